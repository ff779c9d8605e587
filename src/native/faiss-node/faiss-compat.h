// faiss-node 0.5.1 refers to the namespace-level alias faiss::idx_t, which faiss introduced in 1.7.4.
// Debian bookworm ships faiss 1.7.3, where idx_t only exists as faiss::Index::idx_t.
// binding.gyp force-includes this header (-include) before faiss-node's source.
#pragma once
#include <cstdint>
namespace faiss {
using idx_t = int64_t;
}
