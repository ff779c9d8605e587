// faiss_dpr: langchain-dpr's own N-API addon over the system libfaiss (1.7.3).
//
// It gives FaissDPRStore what faiss-node lacks:
//   - index_factory with the inner-product metric, with 64-bit ids (IndexIDMap2 around non-IVF
//     indexes; IVF indexes keep ids natively so remove_ids stays correct);
//   - Float32Array / BigInt64Array in, typed arrays out, no per-element copies;
//   - per-query nprobe / efSearch through faiss::SearchParameters (the index is not mutated);
//   - train / add / search / write / read as Napi::AsyncWorker (off the event loop); the worker
//     holds references to the JS buffers it reads or writes and a shared_ptr to the index;
//   - remove_ids, merge_from, reconstruct, search_and_reconstruct, OpenMP thread count;
//   - a multi-threaded AVX2/FMA inner-product top-k for small query batches on flat indexes
//     (Debian's libfaiss is compiled without SIMD; its nq < 20 path is one thread per query).
// Every faiss error (faiss::FaissException) or bad argument becomes a JavaScript Error
// (NODE_ADDON_API_CPP_EXCEPTIONS_ALL), never a process abort.

#include <napi.h>

#include <faiss/Index.h>
#include <faiss/IndexFlat.h>
#include <faiss/IndexHNSW.h>
#include <faiss/IndexIDMap.h>
#include <faiss/IndexIVF.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IVFlib.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <omp.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define FAISS_DPR_X86 1
#endif

namespace {

using idx_t = faiss::Index::idx_t;

// ---------------------------------------------------------------------------------------------
// Index holder and structure analysis

struct Holder {
  std::unique_ptr<faiss::Index> index;
  std::mutex mu;  // one operation at a time on one index
};

// The layers FaissDPRStore cares about: [IDMap(2)] → [PreTransform] → core (IVF / HNSW / Flat / …)
struct Parts {
  faiss::Index* top = nullptr;
  faiss::IndexIDMap* idmap = nullptr;        // IndexIDMap or IndexIDMap2
  faiss::IndexIDMap2* idmap2 = nullptr;
  faiss::IndexPreTransform* pre = nullptr;
  faiss::Index* core = nullptr;
  faiss::IndexIVF* ivf = nullptr;
  faiss::IndexHNSW* hnsw = nullptr;
  faiss::IndexFlat* flat = nullptr;          // exact flat storage, core itself
};

Parts analyse(faiss::Index* top) {
  Parts p;
  p.top = top;
  faiss::Index* cur = top;
  if (auto* m = dynamic_cast<faiss::IndexIDMap*>(cur)) {
    p.idmap = m;
    p.idmap2 = dynamic_cast<faiss::IndexIDMap2*>(cur);
    cur = m->index;
  }
  if (auto* pt = dynamic_cast<faiss::IndexPreTransform*>(cur)) {
    p.pre = pt;
    cur = pt->index;
  }
  p.core = cur;
  p.ivf = dynamic_cast<faiss::IndexIVF*>(cur);
  p.hnsw = dynamic_cast<faiss::IndexHNSW*>(cur);
  p.flat = dynamic_cast<faiss::IndexFlat*>(cur);
  return p;
}

std::string metricName(faiss::MetricType m) {
  switch (m) {
    case faiss::METRIC_INNER_PRODUCT: return "inner_product";
    case faiss::METRIC_L2: return "l2";
    default: return "other(" + std::to_string(static_cast<int>(m)) + ")";
  }
}

std::string kindName(const Parts& p) {
  if (p.ivf) return "ivf";
  if (p.hnsw) return "hnsw";
  if (p.flat) return "flat";
  return "other";
}

// FNV-1a 64 over bytes, hex
std::string fnv1a(const std::vector<uint8_t>& data) {
  uint64_t h = 1469598103934665603ULL;
  for (uint8_t b : data) { h ^= b; h *= 1099511628211ULL; }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// ---------------------------------------------------------------------------------------------
// Fast inner-product top-k for a few queries against a flat store (row-major xb, nb × d).

float dotScalar(const float* a, const float* b, size_t d) {
  float s = 0;
  for (size_t i = 0; i < d; i++) s += a[i] * b[i];
  return s;
}

#ifdef FAISS_DPR_X86
__attribute__((target("avx2,fma"))) float dotAvx2(const float* a, const float* b, size_t d) {
  __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
  __m256 s2 = _mm256_setzero_ps(), s3 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    s2 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 16), _mm256_loadu_ps(b + i + 16), s2);
    s3 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 24), _mm256_loadu_ps(b + i + 24), s3);
  }
  for (; i + 8 <= d; i += 8) s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
  __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
  __m128 lo = _mm256_castps256_ps128(s), hi = _mm256_extractf128_ps(s, 1);
  __m128 q = _mm_add_ps(lo, hi);
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_shuffle_ps(q, q, 1));
  float r = _mm_cvtss_f32(q);
  for (; i < d; i++) r += a[i] * b[i];
  return r;
}
#endif

using DotFn = float (*)(const float*, const float*, size_t);

DotFn pickDot() {
#ifdef FAISS_DPR_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return dotAvx2;
#endif
  return dotScalar;
}

const DotFn kDot = pickDot();

// min-heap of (score, position) keeping the k largest scores
struct TopK {
  size_t k;
  std::vector<std::pair<float, idx_t>> h;
  explicit TopK(size_t k_) : k(k_) { h.reserve(k_); }
  static bool cmp(const std::pair<float, idx_t>& a, const std::pair<float, idx_t>& b) {
    return a.first > b.first;  // min at front
  }
  void push(float s, idx_t i) {
    if (h.size() < k) {
      h.emplace_back(s, i);
      std::push_heap(h.begin(), h.end(), cmp);
    } else if (s > h.front().first) {
      std::pop_heap(h.begin(), h.end(), cmp);
      h.back() = {s, i};
      std::push_heap(h.begin(), h.end(), cmp);
    }
  }
};

// D/L: nq × k, sorted by decreasing score; missing → (-inf, -1). Labels are row positions.
void flatIpTopK(const float* xb, size_t nb, size_t d, const float* q, size_t nq, size_t k,
                float* D, idx_t* L) {
  int nt = std::max(1, omp_get_max_threads());
  if (nb < 4096) nt = 1;
  std::vector<std::vector<TopK>> local(nt, std::vector<TopK>(nq, TopK(k)));
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    size_t begin = nb * t / nt, end = nb * (t + 1) / nt;
    auto& heaps = local[t];
    for (size_t i = begin; i < end; i++) {
      const float* row = xb + i * d;
      for (size_t j = 0; j < nq; j++) heaps[j].push(kDot(row, q + j * d, d), static_cast<idx_t>(i));
    }
  }
  for (size_t j = 0; j < nq; j++) {
    std::vector<std::pair<float, idx_t>> all;
    for (int t = 0; t < nt; t++) all.insert(all.end(), local[t][j].h.begin(), local[t][j].h.end());
    std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    for (size_t r = 0; r < k; r++) {
      if (r < all.size()) {
        D[j * k + r] = all[r].first;
        L[j * k + r] = all[r].second;
      } else {
        D[j * k + r] = -INFINITY;
        L[j * k + r] = -1;
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Operations (run with the holder's mutex held; may throw)

struct SearchKnobs {
  int64_t nprobe = 0;    // 0: index default
  int64_t efSearch = 0;  // 0: index default
};

void checkFinite(const float* x, size_t n, size_t d, const char* what) {
  size_t total = n * d;
  size_t bad = total;
#pragma omp parallel for reduction(min : bad) if (total > (1u << 20))
  for (size_t i = 0; i < total; i++) {
    if (!std::isfinite(x[i]) && i < bad) bad = i;
  }
  if (bad < total) {
    std::ostringstream m;
    m << what << ": vector " << bad / d << " has a non-finite value (" << x[bad] << ") at component "
      << bad % d;
    throw std::invalid_argument(m.str());
  }
}

void doSearch(faiss::Index* top, const float* x, size_t nq, size_t k, const SearchKnobs& knobs,
              float* D, idx_t* L) {
  Parts p = analyse(top);
  // Input goes through the pre-transform (if any) by hand so that search parameters reach the core.
  std::unique_ptr<const float[]> owned;
  const float* xc = x;
  if (p.pre) {
    xc = p.pre->apply_chain(nq, x);
    if (xc != x) owned.reset(xc);
  }
  const faiss::Index* core = p.core;
  bool fast = p.flat && p.flat->metric_type == faiss::METRIC_INNER_PRODUCT && nq < 20;
  if (fast) {
    flatIpTopK(p.flat->get_xb(), p.flat->ntotal, p.flat->d, xc, nq, k, D, L);
  } else if (p.ivf) {
    faiss::SearchParametersIVF params;
    params.nprobe = knobs.nprobe > 0 ? static_cast<size_t>(knobs.nprobe) : p.ivf->nprobe;
    params.max_codes = p.ivf->max_codes;
    p.ivf->search(nq, xc, k, D, L, &params);
  } else if (p.hnsw) {
    faiss::SearchParametersHNSW params;
    params.efSearch = knobs.efSearch > 0 ? static_cast<int>(knobs.efSearch) : p.hnsw->hnsw.efSearch;
    // faiss 1.7.3 passes params.efSearch to the candidate queue but still stops the level-0
    // search at the index's own hnsw.efSearch (fixed in 1.7.4), so the parameter alone does
    // nothing above the stored value. We hold this index's lock for the whole search: set the
    // stored value for the call and restore it afterwards.
    struct Restore {
      faiss::HNSW& h;
      int old;
      ~Restore() { h.efSearch = old; }
    } restore{p.hnsw->hnsw, p.hnsw->hnsw.efSearch};
    p.hnsw->hnsw.efSearch = params.efSearch;
    p.hnsw->search(nq, xc, k, D, L, &params);
  } else {
    core->search(nq, xc, k, D, L);
  }
  if (p.idmap) {
    const auto& map = p.idmap->id_map;
    for (size_t i = 0; i < nq * k; i++) {
      if (L[i] >= 0) L[i] = map[L[i]];
    }
  }
}

// Reconstruct the vectors with the given labels. IVF indexes are scanned list by list (no direct
// map needed, so merge_from keeps working).
void doReconstruct(faiss::Index* top, const idx_t* labels, size_t n, float* out) {
  Parts p = analyse(top);
  if (p.idmap || !p.ivf) {
    for (size_t i = 0; i < n; i++) top->reconstruct(labels[i], out + i * top->d);
    return;
  }
  std::unordered_map<idx_t, std::vector<size_t>> want;
  for (size_t i = 0; i < n; i++) want[labels[i]].push_back(i);
  size_t found = 0;
  std::vector<float> tmp(p.ivf->d);
  for (size_t list = 0; list < p.ivf->nlist && found < n; list++) {
    size_t ls = p.ivf->invlists->list_size(list);
    if (ls == 0) continue;
    faiss::InvertedLists::ScopedIds ids(p.ivf->invlists, list);
    for (size_t o = 0; o < ls; o++) {
      auto it = want.find(ids[o]);
      if (it == want.end()) continue;
      p.ivf->reconstruct_from_offset(list, o, tmp.data());
      float* dst = nullptr;
      std::vector<float> back;
      if (p.pre) {
        back.resize(top->d);
        p.pre->reverse_chain(1, tmp.data(), back.data());
      }
      for (size_t slot : it->second) {
        dst = out + slot * top->d;
        std::memcpy(dst, p.pre ? back.data() : tmp.data(), sizeof(float) * top->d);
        found++;
      }
      want.erase(it);
    }
  }
  if (!want.empty()) {
    throw std::invalid_argument("reconstruct: label " + std::to_string(want.begin()->first) +
                                " is not in the index");
  }
}

std::string trainedFingerprint(const faiss::Index* index) {
  faiss::VectorIOWriter w;
  faiss::write_index(index, &w);
  return fnv1a(w.data);
}

// ---------------------------------------------------------------------------------------------
// JS helpers

struct Addon {
  Napi::FunctionReference indexCtor;
};

[[noreturn]] void throwType(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, "FaissIndex: " + msg);
}

Napi::Float32Array needF32(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throwType(v.Env(), std::string(what) + " must be a Float32Array");
  }
  return v.As<Napi::Float32Array>();
}

Napi::BigInt64Array needI64(const Napi::Value& v, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array) {
    throwType(v.Env(), std::string(what) + " must be a BigInt64Array");
  }
  return v.As<Napi::BigInt64Array>();
}

int64_t needInt(const Napi::Value& v, const char* what, int64_t min) {
  if (!v.IsNumber()) throwType(v.Env(), std::string(what) + " must be a number");
  double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || std::floor(x) != x || x < static_cast<double>(min)) {
    throw Napi::RangeError::New(v.Env(), "FaissIndex: " + std::string(what) + " must be an integer ≥ " +
                                              std::to_string(min) + ", got " + v.ToString().Utf8Value());
  }
  return static_cast<int64_t>(x);
}

// ---------------------------------------------------------------------------------------------
// Async workers. Each holds the index (shared_ptr) and persistent references to its JS buffers.

class OpWorker : public Napi::AsyncWorker {
 public:
  OpWorker(Napi::Env env, std::shared_ptr<Holder> h, std::string op)
      : Napi::AsyncWorker(env, ("faiss_dpr." + op).c_str()), h_(std::move(h)), op_(std::move(op)),
        deferred_(Napi::Promise::Deferred::New(env)) {}
  Napi::Promise Promise() { return deferred_.Promise(); }
  void keep(Napi::Value v) { refs_.push_back(Napi::Persistent(v.As<Napi::Object>())); }

 protected:
  void Execute() override {
    try {
      std::lock_guard<std::mutex> lock(h_->mu);
      if (!h_->index) throw std::runtime_error("the index was disposed");
      Run(h_->index.get());
    } catch (const faiss::FaissException& e) {
      SetError("FaissIndex." + op_ + ": faiss: " + e.msg);
    } catch (const std::bad_alloc&) {
      SetError("FaissIndex." + op_ + ": out of memory");
    } catch (const std::exception& e) {
      SetError("FaissIndex." + op_ + ": " + e.what());
    }
  }
  virtual void Run(faiss::Index* index) = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  void OnOK() override { deferred_.Resolve(Result(Env())); }
  void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

  std::shared_ptr<Holder> h_;
  std::string op_;
  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> refs_;
};

class TrainWorker : public OpWorker {
 public:
  TrainWorker(Napi::Env env, std::shared_ptr<Holder> h, const float* x, size_t n)
      : OpWorker(env, std::move(h), "train"), x_(x), n_(n) {}
  void Run(faiss::Index* index) override {
    checkFinite(x_, n_, index->d, "train");
    index->train(n_, x_);
    fingerprint_ = trainedFingerprint(index);
  }
  Napi::Value Result(Napi::Env env) override { return Napi::String::New(env, fingerprint_); }

 private:
  const float* x_;
  size_t n_;
  std::string fingerprint_;
};

class AddWorker : public OpWorker {
 public:
  AddWorker(Napi::Env env, std::shared_ptr<Holder> h, const float* x, size_t n, const idx_t* ids)
      : OpWorker(env, std::move(h), "add"), x_(x), n_(n), ids_(ids) {}
  void Run(faiss::Index* index) override {
    checkFinite(x_, n_, index->d, "add");
    if (!index->is_trained) {
      throw std::invalid_argument("the index is not trained; call train() with representative vectors first");
    }
    if (ids_) {
      index->add_with_ids(n_, x_, ids_);
    } else {
      index->add(n_, x_);
    }
  }

 private:
  const float* x_;
  size_t n_;
  const idx_t* ids_;
};

class SearchWorker : public OpWorker {
 public:
  SearchWorker(Napi::Env env, std::shared_ptr<Holder> h, const float* x, size_t nq, size_t k,
               SearchKnobs knobs, float* D, idx_t* L, bool reconstruct, float* R)
      : OpWorker(env, std::move(h), reconstruct ? "searchAndReconstruct" : "search"), x_(x), nq_(nq),
        k_(k), knobs_(knobs), D_(D), L_(L), reconstruct_(reconstruct), R_(R) {}
  void Run(faiss::Index* index) override {
    checkFinite(x_, nq_, index->d, op_.c_str());
    if (!index->is_trained) throw std::invalid_argument("the index is not trained");
    doSearch(index, x_, nq_, k_, knobs_, D_, L_);
    if (reconstruct_) {
      size_t d = index->d;
      std::vector<idx_t> valid;
      for (size_t i = 0; i < nq_ * k_; i++) {
        if (L_[i] >= 0) valid.push_back(L_[i]);
      }
      std::vector<float> tmp(valid.size() * d);
      doReconstruct(index, valid.data(), valid.size(), tmp.data());
      size_t v = 0;
      for (size_t i = 0; i < nq_ * k_; i++) {
        if (L_[i] >= 0) {
          std::memcpy(R_ + i * d, tmp.data() + (v++) * d, sizeof(float) * d);
        } else {
          std::fill(R_ + i * d, R_ + (i + 1) * d, 0.0f);
        }
      }
    }
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Object o = Napi::Object::New(env);
    o.Set("distances", refs_[1].Value());
    o.Set("labels", refs_[2].Value());
    if (reconstruct_) o.Set("vectors", refs_[3].Value());
    return o;
  }

 private:
  const float* x_;
  size_t nq_, k_;
  SearchKnobs knobs_;
  float* D_;
  idx_t* L_;
  bool reconstruct_;
  float* R_;
};

class WriteWorker : public OpWorker {
 public:
  WriteWorker(Napi::Env env, std::shared_ptr<Holder> h, std::string path)
      : OpWorker(env, std::move(h), "write"), path_(std::move(path)) {}
  void Run(faiss::Index* index) override {
    // faiss::write_index(const char*) reports fopen failures but not short writes reliably:
    // write through our own FILE* and check fflush/fsync/fclose.
    FILE* f = std::fopen(path_.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot open " + path_ + " for writing: " + std::strerror(errno));
    try {
      faiss::write_index(index, f);
    } catch (...) {
      std::fclose(f);
      throw;
    }
    bool ok = std::fflush(f) == 0;
    ok = ok && fsync(fileno(f)) == 0;
    ok = (std::fclose(f) == 0) && ok;
    if (!ok) throw std::runtime_error("writing " + path_ + " failed: " + std::strerror(errno));
  }

 private:
  std::string path_;
};

// ---------------------------------------------------------------------------------------------
// FaissIndex class

class FaissIndex : public Napi::ObjectWrap<FaissIndex> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(
        env, "FaissIndex",
        {
            StaticMethod<&FaissIndex::Read>("read"),
            StaticMethod<&FaissIndex::SetNumThreads>("setNumThreads"),
            StaticMethod<&FaissIndex::GetNumThreads>("getNumThreads"),
            InstanceAccessor<&FaissIndex::GetD>("d"),
            InstanceAccessor<&FaissIndex::GetNtotal>("ntotal"),
            InstanceAccessor<&FaissIndex::GetIsTrained>("isTrained"),
            InstanceAccessor<&FaissIndex::GetMetric>("metric"),
            InstanceAccessor<&FaissIndex::GetInfo>("info"),
            InstanceMethod<&FaissIndex::Train>("train"),
            InstanceMethod<&FaissIndex::Add>("add"),
            InstanceMethod<&FaissIndex::Search>("search"),
            InstanceMethod<&FaissIndex::SearchAndReconstruct>("searchAndReconstruct"),
            InstanceMethod<&FaissIndex::RemoveIds>("removeIds"),
            InstanceMethod<&FaissIndex::MergeFrom>("mergeFrom"),
            InstanceMethod<&FaissIndex::Reconstruct>("reconstruct"),
            InstanceMethod<&FaissIndex::Write>("write"),
            InstanceMethod<&FaissIndex::TrainedFingerprint>("trainedFingerprint"),
            InstanceMethod<&FaissIndex::Reserve>("reserve"),
            InstanceMethod<&FaissIndex::Dispose>("dispose"),
        });
  }

  // new FaissIndex(d, description)  — inner-product metric; ids via IndexIDMap2 unless IVF.
  // new FaissIndex(external)         — internal (read)
  explicit FaissIndex(const Napi::CallbackInfo& info) : Napi::ObjectWrap<FaissIndex>(info) {
    Napi::Env env = info.Env();
    h_ = std::make_shared<Holder>();
    if (info.Length() == 1 && info[0].IsExternal()) {
      h_->index.reset(info[0].As<Napi::External<faiss::Index>>().Data());
      return;
    }
    int64_t d = needInt(info[0], "d", 1);
    if (!info[1].IsString()) throwType(env, "description must be a string (faiss index_factory syntax)");
    std::string desc = info[1].As<Napi::String>().Utf8Value();
    std::unique_ptr<faiss::Index> idx;
    try {
      idx.reset(faiss::index_factory(static_cast<int>(d), desc.c_str(), faiss::METRIC_INNER_PRODUCT));
    } catch (const faiss::FaissException& e) {
      throw Napi::Error::New(env, "FaissIndex: invalid index description \"" + desc + "\": " + e.msg);
    }
    Parts p = analyse(idx.get());
    if (!p.idmap && !p.ivf) {
      auto* m = new faiss::IndexIDMap2(idx.get());
      m->own_fields = true;
      idx.release();
      idx.reset(m);
    }
    h_->index = std::move(idx);
  }

  ~FaissIndex() override = default;

 private:
  faiss::Index* idx(Napi::Env env) {
    if (!h_->index) throw Napi::Error::New(env, "FaissIndex: the index was disposed");
    return h_->index.get();
  }

  // Synchronous ops take the lock too; the JS wrapper queues calls so this never waits long.
  template <typename F>
  auto locked(Napi::Env env, const char* op, F&& f) -> decltype(f(static_cast<faiss::Index*>(nullptr))) {
    std::lock_guard<std::mutex> lock(h_->mu);
    faiss::Index* index = idx(env);
    try {
      return f(index);
    } catch (const faiss::FaissException& e) {
      throw Napi::Error::New(env, std::string("FaissIndex.") + op + ": faiss: " + e.msg);
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, std::string("FaissIndex.") + op + ": " + e.what());
    }
  }

  static Napi::Value Read(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throwType(env, "read(path): path must be a string");
    std::string path = info[0].As<Napi::String>().Utf8Value();

    class ReadWorker : public Napi::AsyncWorker {
     public:
      ReadWorker(Napi::Env env, std::string path)
          : Napi::AsyncWorker(env, "faiss_dpr.read"), path_(std::move(path)),
            deferred_(Napi::Promise::Deferred::New(env)) {}
      Napi::Promise Promise() { return deferred_.Promise(); }
      void Execute() override {
        try {
          FILE* f = std::fopen(path_.c_str(), "rb");
          if (!f) throw std::runtime_error("cannot open " + path_ + ": " + std::strerror(errno));
          std::unique_ptr<FILE, int (*)(FILE*)> guard(f, std::fclose);
          index_.reset(faiss::read_index(f));
          // the file must end where the index ends: trailing bytes mean a corrupt or foreign file
          if (std::fgetc(f) != EOF) throw std::runtime_error(path_ + " has trailing bytes after the index");
        } catch (const faiss::FaissException& e) {
          SetError("FaissIndex.read: " + path_ + " is not a readable faiss index (truncated or corrupt?): " + e.msg);
        } catch (const std::bad_alloc&) {
          SetError("FaissIndex.read: " + path_ + " is not a readable faiss index (absurd sizes: corrupt?)");
        } catch (const std::exception& e) {
          SetError(std::string("FaissIndex.read: ") + e.what());
        }
      }
      void OnOK() override {
        Napi::Env env = Env();
        auto* data = env.GetInstanceData<Addon>();
        faiss::Index* raw = index_.release();
        try {
          deferred_.Resolve(data->indexCtor.New({Napi::External<faiss::Index>::New(env, raw)}));
        } catch (const Napi::Error& e) {
          deferred_.Reject(e.Value());
        }
      }
      void OnError(const Napi::Error& e) override { deferred_.Reject(e.Value()); }

     private:
      std::string path_;
      std::unique_ptr<faiss::Index> index_;
      Napi::Promise::Deferred deferred_;
    };
    auto* w = new ReadWorker(env, path);
    auto p = w->Promise();
    w->Queue();
    return p;
  }

  static Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
    int64_t n = needInt(info[0], "threads", 1);
    omp_set_num_threads(static_cast<int>(n));
    return info.Env().Undefined();
  }
  static Napi::Value GetNumThreads(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), omp_get_max_threads());
  }

  Napi::Value GetD(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), idx(info.Env())->d); }
  Napi::Value GetNtotal(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(idx(info.Env())->ntotal));
  }
  Napi::Value GetIsTrained(const Napi::CallbackInfo& info) {
    return Napi::Boolean::New(info.Env(), idx(info.Env())->is_trained);
  }
  Napi::Value GetMetric(const Napi::CallbackInfo& info) {
    return Napi::String::New(info.Env(), metricName(idx(info.Env())->metric_type));
  }
  // { kind, hasIdMap, nlist?, nprobe?, efSearch?, canRemove, minTrainingVectors }
  Napi::Value GetInfo(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    Parts p = analyse(idx(env));
    Napi::Object o = Napi::Object::New(env);
    o.Set("kind", kindName(p));
    o.Set("hasIdMap", p.idmap != nullptr);
    o.Set("hasPreTransform", p.pre != nullptr);
    o.Set("canRemove", p.hnsw == nullptr);
    if (p.ivf) {
      o.Set("nlist", static_cast<double>(p.ivf->nlist));
      o.Set("nprobe", static_cast<double>(p.ivf->nprobe));
    }
    if (p.hnsw) o.Set("efSearch", p.hnsw->hnsw.efSearch);
    return o;
  }

  Napi::Value Train(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto x = needF32(info[0], "train(x): x");
    size_t d = idx(env)->d;
    if (x.ElementLength() == 0 || x.ElementLength() % d != 0) {
      throw Napi::RangeError::New(env, "FaissIndex.train: x has " + std::to_string(x.ElementLength()) +
                                           " values, expected a non-zero multiple of d=" + std::to_string(d));
    }
    auto* w = new TrainWorker(env, h_, x.Data(), x.ElementLength() / d);
    w->keep(x);
    auto p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto x = needF32(info[0], "add(x, ids): x");
    size_t d = idx(env)->d;
    if (x.ElementLength() == 0 || x.ElementLength() % d != 0) {
      throw Napi::RangeError::New(env, "FaissIndex.add: x has " + std::to_string(x.ElementLength()) +
                                           " values, expected a non-zero multiple of d=" + std::to_string(d));
    }
    size_t n = x.ElementLength() / d;
    const idx_t* ids = nullptr;
    Napi::Value idsVal = info.Length() > 1 ? info[1] : env.Undefined();
    if (!idsVal.IsUndefined() && !idsVal.IsNull()) {
      auto a = needI64(idsVal, "add(x, ids): ids");
      if (a.ElementLength() != n) {
        throw Napi::RangeError::New(env, "FaissIndex.add: " + std::to_string(n) + " vectors but " +
                                             std::to_string(a.ElementLength()) + " ids");
      }
      ids = reinterpret_cast<const idx_t*>(a.Data());
    }
    auto* w = new AddWorker(env, h_, x.Data(), n, ids);
    w->keep(x);
    if (ids) w->keep(idsVal);
    auto p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value SearchImpl(const Napi::CallbackInfo& info, bool reconstruct) {
    Napi::Env env = info.Env();
    auto x = needF32(info[0], "search(x, k): x");
    int64_t k = needInt(info[1], "k", 1);
    SearchKnobs knobs;
    if (info.Length() > 2 && info[2].IsObject()) {
      auto o = info[2].As<Napi::Object>();
      if (o.Has("nprobe") && !o.Get("nprobe").IsUndefined()) knobs.nprobe = needInt(o.Get("nprobe"), "nprobe", 1);
      if (o.Has("efSearch") && !o.Get("efSearch").IsUndefined())
        knobs.efSearch = needInt(o.Get("efSearch"), "efSearch", 1);
    }
    size_t d = idx(env)->d;
    if (x.ElementLength() == 0 || x.ElementLength() % d != 0) {
      throw Napi::RangeError::New(env, "FaissIndex.search: queries have " + std::to_string(x.ElementLength()) +
                                           " values, expected a non-zero multiple of d=" + std::to_string(d));
    }
    size_t nq = x.ElementLength() / d;
    auto D = Napi::Float32Array::New(env, nq * k);
    auto L = Napi::BigInt64Array::New(env, nq * k);
    Napi::Float32Array R;
    if (reconstruct) R = Napi::Float32Array::New(env, nq * k * d);
    auto* w = new SearchWorker(env, h_, x.Data(), nq, static_cast<size_t>(k), knobs, D.Data(),
                               reinterpret_cast<idx_t*>(L.Data()), reconstruct,
                               reconstruct ? R.Data() : nullptr);
    w->keep(x);
    w->keep(D);
    w->keep(L);
    if (reconstruct) w->keep(R);
    auto p = w->Promise();
    w->Queue();
    return p;
  }
  Napi::Value Search(const Napi::CallbackInfo& info) { return SearchImpl(info, false); }
  Napi::Value SearchAndReconstruct(const Napi::CallbackInfo& info) { return SearchImpl(info, true); }

  Napi::Value RemoveIds(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto ids = needI64(info[0], "removeIds(ids): ids");
    return locked(env, "removeIds", [&](faiss::Index* index) -> Napi::Value {
      Parts p = analyse(index);
      if (p.hnsw) throw std::invalid_argument("HNSW indexes cannot remove vectors (faiss limitation)");
      faiss::IDSelectorBatch sel(ids.ElementLength(), reinterpret_cast<const idx_t*>(ids.Data()));
      size_t n = index->remove_ids(sel);
      return Napi::Number::New(env, static_cast<double>(n));
    });
  }

  // mergeFrom(other, addId): moves other's vectors into this index (other becomes empty),
  // adding addId to their ids. faiss requires identical structure; see the TS side for training.
  Napi::Value MergeFrom(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) throwType(env, "mergeFrom(other): other must be a FaissIndex");
    FaissIndex* other = FaissIndex::Unwrap(info[0].As<Napi::Object>());
    if (other == this) throw Napi::Error::New(env, "FaissIndex.mergeFrom: cannot merge an index into itself");
    int64_t addId = needInt(info[1], "addId", 0);
    std::lock_guard<std::mutex> lockOther(other->h_->mu);
    faiss::Index* o = other->idx(env);
    return locked(env, "mergeFrom", [&](faiss::Index* index) -> Napi::Value {
      if (o->d != index->d) {
        throw std::invalid_argument("dimensions differ: " + std::to_string(index->d) + " vs " + std::to_string(o->d));
      }
      index->merge_from(*o, addId);
      return env.Undefined();
    });
  }

  Napi::Value Reconstruct(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto ids = needI64(info[0], "reconstruct(ids): ids");
    size_t d = idx(env)->d;
    auto out = Napi::Float32Array::New(env, ids.ElementLength() * d);
    return locked(env, "reconstruct", [&](faiss::Index* index) -> Napi::Value {
      doReconstruct(index, reinterpret_cast<const idx_t*>(ids.Data()), ids.ElementLength(), out.Data());
      return out;
    });
  }

  Napi::Value Write(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) throwType(env, "write(path): path must be a string");
    auto* w = new WriteWorker(env, h_, info[0].As<Napi::String>().Utf8Value());
    auto p = w->Promise();
    w->Queue();
    return p;
  }

  Napi::Value TrainedFingerprint(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    return locked(env, "trainedFingerprint", [&](faiss::Index* index) -> Napi::Value {
      if (index->ntotal != 0) {
        throw std::invalid_argument("the fingerprint of the training is only defined for an empty index");
      }
      return Napi::String::New(env, trainedFingerprint(index));
    });
  }

  // reserve(n): pre-sizes flat storage and id maps for n vectors in total, so a bulk load does not
  // pay std::vector's grow-and-copy (which briefly holds old + new buffers: ~1.5-2× the raw bytes).
  Napi::Value Reserve(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    int64_t n = needInt(info[0], "n", 0);
    return locked(env, "reserve", [&](faiss::Index* index) -> Napi::Value {
      Parts p = analyse(index);
      if (p.flat) p.flat->codes.reserve(static_cast<size_t>(n) * p.flat->code_size);
      if (p.idmap) p.idmap->id_map.reserve(static_cast<size_t>(n));
      if (p.idmap2) p.idmap2->rev_map.reserve(static_cast<size_t>(n));
      return env.Undefined();
    });
  }

  Napi::Value Dispose(const Napi::CallbackInfo& info) {
    // Workers hold their own shared_ptr<Holder>; taking the lock waits for a running one.
    std::lock_guard<std::mutex> lock(h_->mu);
    h_->index.reset();
    return info.Env().Undefined();
  }

  std::shared_ptr<Holder> h_;
};

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  auto* data = new Addon();
  Napi::Function ctor = FaissIndex::Define(env);
  data->indexCtor = Napi::Persistent(ctor);
  env.SetInstanceData<Addon>(data);
  exports.Set("FaissIndex", ctor);
  exports.Set("simd", Napi::String::New(env, kDot == dotScalar ? "none" : "avx2+fma"));
  return exports;
}

}  // namespace

NODE_API_MODULE(faiss_dpr, Init)
