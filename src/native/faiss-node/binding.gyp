# Build recipe for faiss-node 0.5.1's own C++ source (node_modules/faiss-node/src/faiss.cc) against
# the system libfaiss (Debian libfaiss-dev 1.7.3, static) and OpenBLAS.
# scripts/build-native.sh copies this file and faiss-compat.h into node_modules/faiss-node/ and runs
# node-gyp there. Nothing of faiss-node's source lives in this repository.
{
  "targets": [
    {
      "target_name": "faiss-node",
      "sources": ["src/faiss.cc"],
      # The repository's node-addon-api 8 (faiss-node bundles an older copy); set by build-native.sh.
      "include_dirs": ["<!(echo $LANGCHAIN_DPR_NAPI_INCLUDE)"],
      # node-addon-api 8 with C++ exceptions everywhere: a faiss::FaissException thrown inside a
      # binding method becomes a JavaScript Error instead of std::terminate (SIGABRT).
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O2", "-w", "-fexceptions", "-frtti", "-fopenmp",
                    "-include", "<(module_root_dir)/faiss-compat.h"],
      "libraries": ["-lfaiss", "-llapack", "-lblas", "-fopenmp"]
    }
  ]
}
