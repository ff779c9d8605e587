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
#include <faiss/IndexIVFPQ.h>
#include <faiss/IndexPQ.h>
#include <faiss/IndexPreTransform.h>
#include <faiss/IndexRefine.h>
#include <faiss/IndexScalarQuantizer.h>
#include <faiss/VectorTransform.h>
#include <faiss/IVFlib.h>
#include <faiss/impl/AuxIndexStructures.h>
#include <faiss/impl/FaissException.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/impl/io.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>
#include <faiss/invlists/DirectMap.h>
#include <faiss/invlists/InvertedLists.h>

#include <omp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <limits>
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
// Limits. Exported to JavaScript as `limits`; src/native/faiss-index.ts mirrors them as FAISS_LIMITS.
// They keep every allocation the addon or faiss makes for one call bounded before it is made: a
// request above them is an Error, never a bad_alloc inside an OpenMP region (std::terminate) or a
// V8 out-of-memory abort.

constexpr int64_t kMaxDim = 65536;                       // d of an index and of a transform's output
constexpr int64_t kMaxK = 1 << 20;                       // search k
constexpr int64_t kMaxResultEntries = int64_t(1) << 27;  // nq × k per search (12 bytes each: 1.5 GiB)
constexpr int64_t kMaxVectorFloats = int64_t(1) << 28;   // floats out of reconstruct / searchAndReconstruct
constexpr int64_t kMaxEf = 1 << 20;                      // HNSW efSearch, efConstruction
constexpr int64_t kMaxNlist = 1 << 22;                   // IVF lists
constexpr int64_t kMinHnswM = 2, kMaxHnswM = 1024;       // HNSW M (M = 0 or 1 makes no level table)
constexpr int64_t kMaxPqBits = 16;                       // bits per PQ code
constexpr int64_t kMaxTableFloats = int64_t(1) << 28;    // a PQ codebook, a transform matrix, an SDC table
constexpr int kMaxNesting = 8;                           // indexes inside indexes (files and descriptions)
constexpr int kMaxTransforms = 16;                       // vector transforms in front of an index
constexpr int64_t kMaxUpperBeam = 1 << 16;               // HNSW upper_beam stored in a file
constexpr double kMaxRefineKFactor = 1024;               // IndexRefine k_factor stored in a file

int maxThreads() { return std::max(16, 4 * omp_get_num_procs()); }

std::string str(int64_t v) { return std::to_string(v); }

// ---------------------------------------------------------------------------------------------
// Index descriptions: checked before faiss::index_factory, which divides by, shifts by and
// allocates from the description's numbers unchecked (PQ0 → SIGFPE, HNSW0 → SIGSEGV, IVF0 and
// PQ4x0 → assertion abort). Only the grammar below is accepted: it is the part of faiss's
// factory whose files the checked reader (FileScan) understands, so an index that can be created
// can also be saved and loaded again.

const char* const kDescriptionSyntax =
    "supported descriptions: Flat | PQ{m}[x{nbits}][np] | SQ4 | SQ6 | SQ8 | SQfp16 | "
    "HNSW[{M}][,Flat | ,PQ{m}[np] | ,SQ{4|6|8|fp16}] | "
    "IVF{nlist}[_HNSW{M}],{Flat | PQ{m}[x{nbits}][np] | SQ{4|6|8|fp16}}; optionally preceded by vector "
    "transforms (OPQ{m}[_{dout}], PCA[W][R]{dout}, RR[{dout}], L2norm, Pad{dout}, each followed by a comma), "
    "followed by ,RFlat or ,Refine(<description>), and with IDMap or IDMap2 as a prefix or suffix";

struct DescriptionError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// A decimal number ("" → deflt). Values past 10^12 saturate to 10^12 (and then fail the
// range checks as 10^12).
int64_t decimal(const std::string& s, int64_t deflt) {
  if (s.empty()) return deflt;
  int64_t v = 0;
  for (char c : s) {
    v = v * 10 + (c - '0');
    if (v > 1000000000000LL) return 1000000000000LL;
  }
  return v;
}

std::string divisorsOf(int64_t d) {
  std::string out;
  int n = 0;
  for (int64_t m = 1; m <= d; m++) {
    if (d % m != 0) continue;
    if (n++ == 16) return out + ", ...";
    out += (out.empty() ? "" : ", ") + str(m);
  }
  return out;
}

void checkPqNumbers(const std::string& part, int64_t d, int64_t m, int64_t nbits, bool hnsw) {
  if (m < 1 || d % m != 0) {
    throw DescriptionError(part + ": the number of sub-quantizers m must be ≥ 1 and divide d = " + str(d) +
                           " (valid m: " + divisorsOf(d) + "), got " + str(m));
  }
  if (nbits < 1 || nbits > kMaxPqBits) {
    throw DescriptionError(part + ": bits per code must be in 1.." + str(kMaxPqBits) + ", got " + str(nbits));
  }
  if ((d << nbits) > kMaxTableFloats) {
    throw DescriptionError(part + ": the codebook of d × 2^nbits = " + str(d << nbits) +
                           " floats exceeds the limit of 2^28 floats (1 GiB); use fewer bits");
  }
  // IndexHNSWPQ keeps an m × 256 × 256 table of code-to-code distances
  if (hnsw && m * 65536 > kMaxTableFloats) {
    throw DescriptionError(part + ": HNSW over PQ keeps an m × 256² distance table; m = " + str(m) +
                           " exceeds the limit of " + str(kMaxTableFloats / 65536));
  }
}

void checkHnswM(const std::string& part, int64_t M) {
  if (M < kMinHnswM || M > kMaxHnswM) {
    throw DescriptionError(part + ": HNSW M (links per node) must be in " + str(kMinHnswM) + ".." + str(kMaxHnswM) +
                           ", got " + str(M));
  }
}

// A cursor over a description part, for faiss's small regular patterns (std::regex would leave
// template symbols visible in the prebuilt addon, and its patterns are simple).
struct Cursor {
  const std::string& s;
  size_t i = 0;
  explicit Cursor(const std::string& str) : s(str) {}
  bool lit(const char* p) {
    size_t n = std::strlen(p);
    if (s.compare(i, n, p) != 0) return false;
    i += n;
    return true;
  }
  // one or more digits (at most 13 kept: decimal() saturates anyway)
  bool digits(std::string* out) {
    size_t j = i;
    while (j < s.size() && s[j] >= '0' && s[j] <= '9') j++;
    if (j == i) return false;
    if (out) *out = s.substr(i, std::min<size_t>(j - i, 13));
    i = j;
    return true;
  }
  bool end() const { return i == s.size(); }
  std::string rest() const { return s.substr(i); }
};

bool isSq(const std::string& s) { return s == "SQ4" || s == "SQ6" || s == "SQ8" || s == "SQfp16"; }

// "PQ{m}[x{nbits}][np]" (withBits) or "PQ{m}[np]"; nbits defaults to 8
bool matchPq(const std::string& s, bool withBits, int64_t* m, int64_t* nbits) {
  Cursor c(s);
  std::string ms, bs;
  if (!c.lit("PQ") || !c.digits(&ms)) return false;
  if (withBits && c.lit("x") && !c.digits(&bs)) return false;
  c.lit("np");
  if (!c.end()) return false;
  *m = decimal(ms, 0);
  *nbits = decimal(bs, 8);
  return true;
}

bool endsWith(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool startsWith(const std::string& s, const std::string& head) { return s.compare(0, head.size(), head) == 0; }

[[noreturn]] void unsupportedPart(const std::string& part) {
  throw DescriptionError("could not parse \"" + part + "\" as a supported description (langchain-dpr builds only " +
                         "index kinds whose files it can check when loading them); " + kDescriptionSyntax);
}

// One vector transform "t" at input dimension d (faiss's parse_VectorTransform patterns): false when t
// is not a transform, else true with its output dimension in *dout (checked).
bool checkTransform(const std::string& t, int64_t d, int64_t* dout) {
  Cursor c(t);
  std::string a, b;
  if (c.lit("PCA")) {
    c.lit("W");
    c.lit("R");
    if (!c.digits(&a) || !c.end()) return false;
    *dout = decimal(a, d);
    if (*dout < 1 || *dout > d) {
      throw DescriptionError(t + ": PCA output dimension must be in 1..d = " + str(d) + ", got " + str(*dout));
    }
  } else if (t == "L2norm" || t == "L2Norm") {
    *dout = d;
  } else if (c.lit("RR")) {
    if (!c.end() && (!c.digits(&a) || !c.end())) return false;
    *dout = decimal(a, d);
  } else if (c.lit("OPQ")) {
    if (!c.digits(&a)) return false;
    if (c.lit("_") && !c.digits(&b)) return false;
    if (!c.end()) return false;
    int64_t M = decimal(a, 0);
    *dout = decimal(b, d);
    if (*dout > d) {
      // faiss 1.7.3 trains a max(d_in, d_out)² matrix then refuses to apply it (A.size() != d_in × d_out)
      throw DescriptionError(t + ": the OPQ output dimension must be ≤ d = " + str(d) + " (faiss 1.7.3 cannot apply a " +
                             "widening OPQ), got " + str(*dout));
    }
    if (*dout >= 1 && (M < 1 || *dout % M != 0)) {
      throw DescriptionError(t + ": the number of OPQ sub-spaces m must be ≥ 1 and divide the output dimension " +
                             str(*dout) + " (valid m: " + divisorsOf(*dout) + "), got " + str(M));
    }
  } else if (c.lit("Pad")) {
    if (!c.digits(&a) || !c.end()) return false;
    *dout = std::max(decimal(a, 0), d);
  } else if (c.lit("ITQ")) {
    if (!c.end() && (!c.digits(&a) || !c.end())) return false;
    unsupportedPart(t);
  } else {
    return false;
  }
  if (*dout < 1 || *dout > kMaxDim) {
    throw DescriptionError(t + ": output dimension must be in 1.." + str(kMaxDim) + ", got " + str(*dout));
  }
  int64_t side = std::max(d, *dout);
  if (side * side > kMaxTableFloats) {
    throw DescriptionError(t + ": a " + str(d) + " → " + str(*dout) + " transform needs a matrix of up to " + str(side) +
                           "² floats, over the limit of 2^28 floats (1 GiB)");
  }
  return true;
}

// Checks description `desc` for input dimension d, following faiss's index_factory_sub (refine first,
// then transforms, then IDMap, then the index kinds); throws DescriptionError.
void checkDescription(const std::string& desc, int64_t d, int depth) {
  if (depth > kMaxNesting) throw DescriptionError("indexes nested more than " + str(kMaxNesting) + " deep");
  std::string s = desc;
  if (s.empty()) throw DescriptionError(std::string("the description is empty; ") + kDescriptionSyntax);

  // "(.+),RFlat" and "(.+),Refine\((.+)\)" (the first group greedy: the last ",Refine(")
  if (s.size() > 6 && endsWith(s, ",RFlat")) return checkDescription(s.substr(0, s.size() - 6), d, depth + 1);
  if (endsWith(s, ")")) {
    for (size_t p = s.rfind(",Refine("); p != std::string::npos && p > 0; p = s.rfind(",Refine(", p - 1)) {
      if (p + 8 < s.size() - 1) {
        checkDescription(s.substr(0, p), d, depth + 1);
        return checkDescription(s.substr(p + 8, s.size() - 1 - (p + 8)), d, depth + 1);
      }
    }
  }

  // vector transforms, each "<transform>,<rest>" (as faiss parses them: they change d)
  int transforms = 0;
  for (size_t comma = s.find(','); comma != std::string::npos && comma > 0; comma = s.find(',')) {
    int64_t dout;
    if (!checkTransform(s.substr(0, comma), d, &dout)) break;
    if (++transforms > kMaxTransforms) throw DescriptionError("more than " + str(kMaxTransforms) + " transforms");
    d = dout;
    s = s.substr(comma + 1);
  }
  if (transforms > 0) return checkDescription(s, d, depth + 1);

  if (s.find_first_of("()") != std::string::npos) unsupportedPart(s);
  for (const char* map : {"IDMap2", "IDMap"}) {
    std::string tail = std::string(",") + map, head = std::string(map) + ",";
    if (s.size() > tail.size() && endsWith(s, tail)) return checkDescription(s.substr(0, s.size() - tail.size()), d, depth + 1);
    if (s.size() > head.size() && startsWith(s, head)) return checkDescription(s.substr(head.size()), d, depth + 1);
  }
  if (s == "Flat" || isSq(s)) return;
  int64_t m = 0, nbits = 0;
  if (matchPq(s, true, &m, &nbits)) return checkPqNumbers(s, d, m, nbits, false);

  Cursor c(s);
  std::string a, b;
  if (c.lit("HNSW")) {  // "HNSW([0-9]*)([,_].*)?"
    c.digits(&a);
    if (c.end() || c.lit(",") || c.lit("_")) {
      checkHnswM(s, decimal(a, 32));
      std::string code = c.rest();
      if (code.empty() || code == "Flat" || isSq(code)) return;
      if (matchPq(code, false, &m, &nbits)) return checkPqNumbers(s, d, m, nbits, true);
    }
    unsupportedPart(s);
  }
  c.i = 0;
  if (c.lit("IVF") && c.digits(&a)) {  // "IVF([0-9]+)(_HNSW([0-9]*))?,(.+)"
    bool hnsw = c.lit("_HNSW");
    if (hnsw) c.digits(&b);
    if (c.lit(",") && !c.end()) {
      int64_t nlist = decimal(a, 0);
      if (nlist < 1 || nlist > kMaxNlist) {
        throw DescriptionError(s + ": the number of IVF lists must be in 1.." + str(kMaxNlist) + ", got " + str(nlist));
      }
      if (hnsw) checkHnswM(s, decimal(b, 32));
      std::string code = c.rest();
      if (code == "Flat" || isSq(code)) return;
      if (matchPq(code, true, &m, &nbits)) return checkPqNumbers(s, d, m, nbits, false);
    }
  }
  unsupportedPart(s);
}

// ---------------------------------------------------------------------------------------------
// Checked reading of index files.
//
// faiss 1.7.3's read_index trusts the file: it allocates whatever sizes the file announces (up to
// 2^40 elements per vector, and list counts unchecked), divides by a PQ's m, shifts by its nbits,
// dereferences the storage of an HNSW-PQ index as an IndexPQ without checking, recurses without a
// depth limit, and checks few of the sizes and none of the ids that search later relies on. So a
// file is read twice:
//   1. FileScan walks it with the same grammar as read_index (for the index kinds listed in
//      kReadableKinds) reading only the small fields and skipping the payloads, and checks every
//      size against the bytes left in the file and against the other fields (ntotal, d, nlist,
//      code sizes) before faiss allocates anything;
//   2. faiss::read_index reads it;
//   3. checkLoaded checks the contents search trusts: HNSW levels, offsets, entry point and
//      neighbor ids, IVF list ids and direct maps, IDMap2 duplicate ids, transform matrices.
// Any failure names the file, the structure and field, what was expected and what was found.

const char* const kReadableKinds =
    "Flat (IxFI, IxF2, IxFl), PQ (IxPq, IxPQ, IxPo), SQ (IxSQ), HNSW over Flat, PQ or SQ (IHNf, IHNp, IHNs), "
    "IVF-Flat, IVF-PQ and IVF-SQ with in-memory lists (IwFl, IwPQ, IwSQ, IwSq + ilar), vector transforms "
    "(IxPT: rrot, PCAm, PcAm, Pcam, LTra, RmDT, VNrm, VCnt), IndexRefine (IxRF), IndexIDMap and IndexIDMap2 "
    "(IxMp, IxM2)";

// n == a × b without overflow (b ≥ 1)
bool isProduct(uint64_t n, int64_t a, int64_t b) {
  return a >= 0 && b >= 1 && n % static_cast<uint64_t>(b) == 0 && n / static_cast<uint64_t>(b) == static_cast<uint64_t>(a);
}

struct DamagedFile : std::runtime_error {
  using std::runtime_error::runtime_error;
};

uint32_t fourccOf(const char* s) {
  return static_cast<uint32_t>(static_cast<uint8_t>(s[0])) | static_cast<uint32_t>(static_cast<uint8_t>(s[1])) << 8 |
         static_cast<uint32_t>(static_cast<uint8_t>(s[2])) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(s[3])) << 24;
}

std::string fourccText(uint32_t h) {
  std::string out = "\"";
  for (int i = 0; i < 4; i++) {
    unsigned char c = static_cast<unsigned char>((h >> (8 * i)) & 0xff);
    if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
      out += static_cast<char>(c);
    } else {
      char buf[5];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  return out + "\"";
}

// What the scan learnt about one index in the file.
struct Scanned {
  uint32_t h = 0;
  std::string name;  // faiss class, e.g. "IndexHNSWFlat"
  int64_t d = 0;
  int64_t ntotal = 0;
  bool trained = false;
  int64_t codeSize = 0;  // bytes per stored vector, where the kind has one
};

// Role of an index inside another: which kinds may appear there.
enum class Role { Top, Quantizer, Storage, Inner };

class FileScan {
 public:
  FileScan(FILE* f, uint64_t size) : f_(f), size_(size) {}

  void scanFile() {
    scanIndex(Role::Top, 0);
    if (pos_ != size_) {
      throw DamagedFile(str(static_cast<int64_t>(size_ - pos_)) + " trailing bytes follow the end of the index at byte " +
                        str(static_cast<int64_t>(pos_)) + " (a file of " + str(static_cast<int64_t>(size_)) +
                        " bytes): the file is damaged or is not one faiss index");
    }
  }

 private:
  FILE* f_;
  uint64_t size_;
  uint64_t pos_ = 0;
  std::string where_;  // "IndexIDMap2 > IndexHNSWFlat (byte 37)"

  uint64_t left() const { return size_ - pos_; }

  [[noreturn]] void bad(const std::string& what) const {
    throw DamagedFile((where_.empty() ? std::string() : where_ + ": ") + what);
  }

  void raw(void* p, uint64_t n, const std::string& field) {
    if (n > left()) {
      bad(field + ": the file ends at byte " + str(static_cast<int64_t>(size_)) + ", " + str(static_cast<int64_t>(n)) +
          " more bytes needed at byte " + str(static_cast<int64_t>(pos_)) + " (truncated?)");
    }
    if (n > 0 && std::fread(p, 1, n, f_) != n) bad(field + ": read error: " + std::strerror(errno));
    pos_ += n;
  }
  template <typename T>
  T one(const std::string& field) {
    T v;
    raw(&v, sizeof v, field);
    return v;
  }
  void skip(uint64_t n, const std::string& field) {
    if (n > left()) {
      bad(field + ": " + str(static_cast<int64_t>(n)) + " bytes announced at byte " + str(static_cast<int64_t>(pos_)) +
          " but only " + str(static_cast<int64_t>(left())) + " bytes are left in the file (truncated or damaged)");
    }
    if (n > 0 && fseeko(f_, static_cast<off_t>(n), SEEK_CUR) != 0) bad(field + ": seek error: " + std::strerror(errno));
    pos_ += n;
  }
  // faiss's READVECTOR: an element count (size_t), then the elements. Returns the count after
  // checking the elements fit in the rest of the file.
  uint64_t vectorCount(uint64_t elem, const std::string& field) {
    uint64_t n = one<uint64_t>(field + " (element count)");
    if (n > left() / elem) {
      bad(field + ": " + str(static_cast<int64_t>(std::min<uint64_t>(n, INT64_MAX))) + " elements of " +
          str(static_cast<int64_t>(elem)) + " bytes announced at byte " + str(static_cast<int64_t>(pos_ - 8)) +
          " but only " + str(static_cast<int64_t>(left())) + " bytes are left in the file");
    }
    return n;
  }
  uint64_t skipVector(uint64_t elem, const std::string& field) {
    uint64_t n = vectorCount(elem, field);
    skip(n * elem, field);
    return n;
  }
  template <typename T>
  std::vector<T> readVector(const std::string& field) {
    uint64_t n = vectorCount(sizeof(T), field);
    std::vector<T> v(n);
    raw(v.data(), n * sizeof(T), field);
    return v;
  }

  void expect(bool ok, const std::string& field, const std::string& expected, int64_t got) const {
    if (!ok) bad(field + ": expected " + expected + ", found " + str(got));
  }

  void header(Scanned& r) {
    int32_t d = one<int32_t>("d");
    expect(d >= 1 && d <= kMaxDim, "d (dimension)", "1.." + str(kMaxDim), d);
    r.d = d;
    int64_t ntotal = one<int64_t>("ntotal");
    expect(ntotal >= 0, "ntotal (vector count)", "≥ 0", ntotal);
    r.ntotal = ntotal;
    one<int64_t>("header padding");
    one<int64_t>("header padding");
    uint8_t trained = one<uint8_t>("is_trained");
    expect(trained <= 1, "is_trained", "0 or 1", trained);
    r.trained = trained != 0;
    int32_t metric = one<int32_t>("metric_type");
    bool known = (metric >= 0 && metric <= 4) || (metric >= 20 && metric <= 22);
    expect(known, "metric_type", "a faiss MetricType (0-4, 20-22)", metric);
    if (metric > 1) one<float>("metric_arg");
  }

  // ProductQuantizer: d (size_t), M, nbits, centroids. Returns the code size.
  int64_t productQuantizer(int64_t d, bool hnsw) {
    uint64_t pd = one<uint64_t>("pq.d"), M = one<uint64_t>("pq.M"), nbits = one<uint64_t>("pq.nbits");
    expect(pd == static_cast<uint64_t>(d), "pq.d", "the index dimension " + str(d), static_cast<int64_t>(pd));
    expect(M >= 1 && M <= static_cast<uint64_t>(d) && d % static_cast<int64_t>(M) == 0, "pq.M",
           "a divisor of d = " + str(d), static_cast<int64_t>(std::min<uint64_t>(M, INT64_MAX)));
    expect(nbits >= 1 && nbits <= static_cast<uint64_t>(hnsw ? 8 : kMaxPqBits), "pq.nbits",
           "1.." + str(hnsw ? 8 : kMaxPqBits), static_cast<int64_t>(std::min<uint64_t>(nbits, INT64_MAX)));
    int64_t ksub = int64_t(1) << nbits;
    expect(d * ksub <= kMaxTableFloats, "pq codebook size d × 2^nbits", "≤ 2^28 floats", d * ksub);
    if (hnsw) {
      expect(static_cast<int64_t>(M) * ksub * ksub <= kMaxTableFloats, "pq.M (HNSW-PQ distance table M × ksub²)",
             "≤ " + str(kMaxTableFloats / (ksub * ksub)), static_cast<int64_t>(M));
    }
    uint64_t nc = skipVector(4, "pq.centroids");
    expect(nc == static_cast<uint64_t>(d * ksub), "pq.centroids count", "d × 2^nbits = " + str(d * ksub),
           static_cast<int64_t>(nc));
    return (static_cast<int64_t>(M) * static_cast<int64_t>(nbits) + 7) / 8;
  }

  // ScalarQuantizer: qtype, rangestat, rangestat_arg, d, code_size, trained. Returns the code size.
  int64_t scalarQuantizer(int64_t d, bool trained) {
    int32_t qtype = one<int32_t>("sq.qtype");
    expect(qtype >= 0 && qtype <= 6, "sq.qtype", "a faiss QuantizerType (0-6)", qtype);
    int32_t rs = one<int32_t>("sq.rangestat");
    expect(rs >= 0 && rs <= 3, "sq.rangestat", "a faiss RangeStat (0-3)", rs);
    one<float>("sq.rangestat_arg");
    uint64_t sd = one<uint64_t>("sq.d");
    expect(sd == static_cast<uint64_t>(d), "sq.d", "the index dimension " + str(d), static_cast<int64_t>(sd));
    one<uint64_t>("sq.code_size");  // faiss recomputes it from qtype and d
    uint64_t nt = skipVector(4, "sq.trained");
    // QT_8bit, QT_4bit, QT_6bit: per-dimension ranges; the uniform ones: one range; fp16, direct: none
    int64_t need = (qtype == 0 || qtype == 1 || qtype == 6) ? 2 * d : (qtype == 2 || qtype == 3) ? 2 : 0;
    if (trained) expect(nt == static_cast<uint64_t>(need), "sq.trained count", str(need), static_cast<int64_t>(nt));
    switch (qtype) {
      case 0: case 2: case 5: return d;
      case 1: case 3: return (d + 1) / 2;
      case 4: return 2 * d;
      default: return (d * 6 + 7) / 8;
    }
  }

  struct Transform {
    int64_t dIn = 0, dOut = 0;
  };

  Transform vectorTransform() {
    uint64_t at = pos_;
    uint32_t h = one<uint32_t>("vector transform type (fourcc)");
    bool linear = h == fourccOf("rrot") || h == fourccOf("PCAm") || h == fourccOf("LTra") || h == fourccOf("PcAm") ||
                  h == fourccOf("Pcam");
    uint64_t nA = 0, nB = 0, nMap = 0, nMean = 0;
    bool haveBias = false;
    if (linear) {
      if (h == fourccOf("PCAm") || h == fourccOf("PcAm") || h == fourccOf("Pcam")) {
        one<float>("pca.eigen_power");
        if (h == fourccOf("Pcam")) one<float>("pca.epsilon");
        one<uint8_t>("pca.random_rotation");
        if (h != fourccOf("PCAm")) one<int32_t>("pca.balanced_bins");
        skipVector(4, "pca.mean");
        skipVector(4, "pca.eigenvalues");
        skipVector(4, "pca.PCAMat");
      }
      uint8_t hb = one<uint8_t>("have_bias");
      expect(hb <= 1, "have_bias", "0 or 1", hb);
      haveBias = hb != 0;
      nA = skipVector(4, "A (transform matrix)");
      nB = skipVector(4, "b (bias)");
    } else if (h == fourccOf("RmDT")) {
      nMap = skipVector(4, "map (dimension remapping)");
    } else if (h == fourccOf("VNrm")) {
      one<float>("norm");
    } else if (h == fourccOf("VCnt")) {
      nMean = skipVector(4, "mean");
    } else {
      bad("vector transform " + fourccText(h) + " at byte " + str(static_cast<int64_t>(at)) +
          " is not recognized (langchain-dpr reads " + kReadableKinds + ")");
    }
    Transform t;
    t.dIn = one<int32_t>("d_in");
    t.dOut = one<int32_t>("d_out");
    uint8_t tr = one<uint8_t>("is_trained");
    std::string name = "vector transform " + fourccText(h) + " at byte " + str(static_cast<int64_t>(at));
    expect(t.dIn >= 1 && t.dIn <= kMaxDim, name + ": d_in", "1.." + str(kMaxDim), t.dIn);
    expect(t.dOut >= 1 && t.dOut <= kMaxDim, name + ": d_out", "1.." + str(kMaxDim), t.dOut);
    expect(tr <= 1, name + ": is_trained", "0 or 1", tr);
    if (linear && tr) {
      expect(nA == static_cast<uint64_t>(t.dIn * t.dOut), name + ": A (matrix) element count",
             "d_in × d_out = " + str(t.dIn * t.dOut), static_cast<int64_t>(nA));
      if (haveBias) {
        expect(nB == static_cast<uint64_t>(t.dOut), name + ": b (bias) element count", "d_out = " + str(t.dOut),
               static_cast<int64_t>(nB));
      }
    }
    if (h == fourccOf("RmDT")) {
      expect(nMap == static_cast<uint64_t>(t.dOut), name + ": map element count", "d_out = " + str(t.dOut),
             static_cast<int64_t>(nMap));
    }
    if (h == fourccOf("VNrm") || h == fourccOf("VCnt")) {
      expect(t.dIn == t.dOut, name + ": d_out", "d_in = " + str(t.dIn), t.dOut);
    }
    if (h == fourccOf("VCnt") && tr) {
      expect(nMean == static_cast<uint64_t>(t.dIn), name + ": mean element count", "d_in = " + str(t.dIn),
             static_cast<int64_t>(nMean));
    }
    return t;
  }

  // ArrayInvertedLists ("ilar"): nlist, code_size, list sizes (full or sparse), then per list the
  // codes and ids.
  void invertedLists(const Scanned& ivf, uint64_t nlist) {
    uint64_t at = pos_;
    uint32_t h = one<uint32_t>("inverted lists type (fourcc)");
    if (h == fourccOf("il00")) bad("the inverted lists are not stored in the file (il00); search would have none");
    if (h != fourccOf("ilar")) {
      bad("inverted lists " + fourccText(h) + " at byte " + str(static_cast<int64_t>(at)) +
          " are not recognized (langchain-dpr reads only in-memory lists, ilar)");
    }
    uint64_t nl = one<uint64_t>("invlists.nlist");
    expect(nl == nlist, "invlists.nlist", "the index's nlist = " + str(static_cast<int64_t>(nlist)),
           static_cast<int64_t>(std::min<uint64_t>(nl, INT64_MAX)));
    uint64_t cs = one<uint64_t>("invlists.code_size");
    expect(cs == static_cast<uint64_t>(ivf.codeSize), "invlists.code_size", "the index's code size " + str(ivf.codeSize),
           static_cast<int64_t>(std::min<uint64_t>(cs, INT64_MAX)));
    std::vector<uint64_t> sizes(nlist, 0);
    uint32_t type = one<uint32_t>("invlists list-size encoding");
    if (type == fourccOf("full")) {
      std::vector<uint64_t> s = readVector<uint64_t>("invlists.sizes");
      expect(s.size() == nlist, "invlists.sizes count", "nlist = " + str(static_cast<int64_t>(nlist)),
             static_cast<int64_t>(s.size()));
      sizes = std::move(s);
    } else if (type == fourccOf("sprs")) {
      std::vector<uint64_t> s = readVector<uint64_t>("invlists.sizes (sparse)");
      expect(s.size() % 2 == 0, "invlists.sizes (sparse) count", "an even number (list, size pairs)",
             static_cast<int64_t>(s.size()));
      for (size_t j = 0; j < s.size(); j += 2) {
        if (s[j] >= nlist) {
          bad("invlists.sizes (sparse): list number " + str(static_cast<int64_t>(std::min<uint64_t>(s[j], INT64_MAX))) +
              ", expected < nlist = " + str(static_cast<int64_t>(nlist)));
        }
        sizes[s[j]] = s[j + 1];
      }
    } else {
      bad("invlists list-size encoding " + fourccText(type) + ", expected \"full\" or \"sprs\"");
    }
    uint64_t perVector = cs + 8, total = 0, count = 0;
    for (uint64_t i = 0; i < nlist; i++) {
      if (sizes[i] > (left() - total) / perVector) {
        bad("inverted list " + str(static_cast<int64_t>(i)) + " announces " +
            str(static_cast<int64_t>(std::min<uint64_t>(sizes[i], INT64_MAX))) + " vectors of " +
            str(static_cast<int64_t>(perVector)) + " bytes, more than the " + str(static_cast<int64_t>(left() - total)) +
            " bytes left in the file");
      }
      total += sizes[i] * perVector;
      count += sizes[i];
    }
    expect(count == static_cast<uint64_t>(ivf.ntotal), "sum of the inverted list sizes",
           "ntotal = " + str(ivf.ntotal), static_cast<int64_t>(count));
    skip(total, "inverted list codes and ids");
  }

  // IVF header: index header, nlist, nprobe, quantizer, direct map.
  uint64_t ivfHeader(Scanned& r, int depth) {
    header(r);
    uint64_t nlist = one<uint64_t>("nlist");
    expect(nlist >= 1 && nlist <= static_cast<uint64_t>(kMaxNlist), "nlist", "1.." + str(kMaxNlist),
           static_cast<int64_t>(std::min<uint64_t>(nlist, INT64_MAX)));
    one<uint64_t>("nprobe");  // any value: search clamps it to 1..nlist
    Scanned q = scanIndex(Role::Quantizer, depth + 1);
    expect(q.d == r.d, "quantizer d", "the index's d = " + str(r.d), q.d);
    if (r.trained) {
      expect(q.ntotal == static_cast<int64_t>(nlist), "quantizer ntotal (centroids)",
             "nlist = " + str(static_cast<int64_t>(nlist)) + " for a trained IVF index", q.ntotal);
    } else {
      expect(q.ntotal <= static_cast<int64_t>(nlist), "quantizer ntotal (centroids)",
             "≤ nlist = " + str(static_cast<int64_t>(nlist)), q.ntotal);
    }
    int8_t dm = one<int8_t>("direct_map.type");
    expect(dm >= 0 && dm <= 2, "direct_map.type", "0 (none), 1 (array) or 2 (hashtable)", dm);
    uint64_t na = skipVector(8, "direct_map.array");
    expect(na == (dm == 1 ? static_cast<uint64_t>(r.ntotal) : 0), "direct_map.array count",
           dm == 1 ? "ntotal = " + str(r.ntotal) : "0 without an array direct map", static_cast<int64_t>(na));
    if (dm == 2) skipVector(16, "direct_map.hashtable");
    return nlist;
  }

  // parent: the fourcc of the index holding this one (0 at the top)
  Scanned scanIndex(Role role, int depth, uint32_t parent = 0) {
    if (depth > kMaxNesting) bad("indexes are nested more than " + str(kMaxNesting) + " deep");
    uint64_t at = pos_;
    uint32_t h = one<uint32_t>("index type (fourcc)");
    Scanned r;
    r.h = h;
    auto is = [&](const char* s) { return h == fourccOf(s); };
    bool flat = is("IxFI") || is("IxF2") || is("IxFl");
    bool pq = is("IxPq") || is("IxPQ") || is("IxPo");
    bool sq = is("IxSQ");
    bool hnsw = is("IHNf") || is("IHNp") || is("IHNs");
    bool ivf = is("IwFl") || is("IwPQ") || is("IwSQ") || is("IwSq");
    bool pt = is("IxPT"), refine = is("IxRF"), idmap = is("IxMp") || is("IxM2");
    r.name = flat ? "IndexFlat" : pq ? "IndexPQ" : sq ? "IndexScalarQuantizer" : is("IHNf") ? "IndexHNSWFlat"
           : is("IHNp") ? "IndexHNSWPQ" : is("IHNs") ? "IndexHNSWSQ" : is("IwFl") ? "IndexIVFFlat"
           : is("IwPQ") ? "IndexIVFPQ" : ivf ? "IndexIVFScalarQuantizer" : pt ? "IndexPreTransform"
           : refine ? "IndexRefine" : is("IxM2") ? "IndexIDMap2" : "IndexIDMap";
    if (!(flat || pq || sq || hnsw || ivf || pt || refine || idmap)) {
      bad("index type " + fourccText(h) + " at byte " + str(static_cast<int64_t>(at)) +
          " is not recognized (langchain-dpr reads " + kReadableKinds + ")");
    }
    // labels of a coarse quantizer or HNSW storage are positions: only position-based kinds fit
    if ((role == Role::Quantizer || role == Role::Storage) && !(flat || pq || sq || (hnsw && role == Role::Quantizer))) {
      bad(r.name + " at byte " + str(static_cast<int64_t>(at)) + " cannot be " +
          (role == Role::Quantizer ? "an IVF coarse quantizer (Flat, PQ, SQ or HNSW expected)"
                                   : "HNSW storage (Flat, PQ or SQ expected)"));
    }
    std::string outer = where_;
    const char* roleName = role == Role::Quantizer ? "quantizer " : role == Role::Storage ? "storage " : "";
    where_ = (outer.empty() ? "" : outer + " > ") + roleName + r.name + " (" + fourccText(h) + " at byte " +
             str(static_cast<int64_t>(at)) + ")";

    if (flat) {
      header(r);
      r.codeSize = r.d * 4;
      uint64_t n = vectorCount(4, "codes (vectors)");
      expect(isProduct(n, r.ntotal, r.d), "float count of the stored vectors",
             "ntotal × d = " + str(r.ntotal) + " × " + str(r.d), static_cast<int64_t>(n));
      skip(n * 4, "codes (vectors)");
    } else if (pq) {
      header(r);
      r.codeSize = productQuantizer(r.d, parent == fourccOf("IHNp"));
      uint64_t n = skipVector(1, "codes");
      expect(isProduct(n, r.ntotal, r.codeSize), "byte count of the codes",
             "ntotal × code size = " + str(r.ntotal) + " × " + str(r.codeSize), static_cast<int64_t>(n));
      if (!is("IxPQ")) {
        int32_t st = one<int32_t>("search_type");
        expect(st >= 0 && st <= 5, "search_type", "a faiss IndexPQ::Search_type_t (0-5)", st);
        one<uint8_t>("encode_signs");
        one<int32_t>("polysemous_ht");
      }
    } else if (sq) {
      header(r);
      r.codeSize = scalarQuantizer(r.d, r.trained);
      uint64_t n = skipVector(1, "codes");
      expect(isProduct(n, r.ntotal, r.codeSize), "byte count of the codes",
             "ntotal × code size = " + str(r.ntotal) + " × " + str(r.codeSize), static_cast<int64_t>(n));
    } else if (ivf) {
      uint64_t nlist = ivfHeader(r, depth);
      if (is("IwFl")) {
        r.codeSize = r.d * 4;
      } else if (is("IwPQ")) {
        uint8_t br = one<uint8_t>("by_residual");
        expect(br <= 1, "by_residual", "0 or 1", br);
        uint64_t cs = one<uint64_t>("code_size");
        r.codeSize = productQuantizer(r.d, false);
        expect(cs == static_cast<uint64_t>(r.codeSize), "code_size", "the PQ's code size " + str(r.codeSize),
               static_cast<int64_t>(std::min<uint64_t>(cs, INT64_MAX)));
      } else {
        r.codeSize = scalarQuantizer(r.d, r.trained);
        uint64_t cs = one<uint64_t>("code_size");
        expect(cs == static_cast<uint64_t>(r.codeSize), "code_size", "the SQ's code size " + str(r.codeSize),
               static_cast<int64_t>(std::min<uint64_t>(cs, INT64_MAX)));
        if (is("IwSq")) {
          uint8_t br = one<uint8_t>("by_residual");
          expect(br <= 1, "by_residual", "0 or 1", br);
        }
      }
      invertedLists(r, nlist);
    } else if (hnsw) {
      header(r);
      expect(r.ntotal <= INT32_MAX, "ntotal", "≤ 2^31 − 1 (HNSW node ids are 32-bit)", r.ntotal);
      uint64_t probas = skipVector(8, "hnsw.assign_probas");
      uint64_t cum = skipVector(4, "hnsw.cum_nneighbor_per_level");
      expect(probas >= 1 && cum == probas + 1, "hnsw.cum_nneighbor_per_level count",
             "assign_probas count + 1 = " + str(static_cast<int64_t>(probas) + 1) + " (≥ 2)", static_cast<int64_t>(cum));
      uint64_t levels = skipVector(4, "hnsw.levels");
      expect(levels == static_cast<uint64_t>(r.ntotal), "hnsw.levels count", "ntotal = " + str(r.ntotal),
             static_cast<int64_t>(levels));
      uint64_t offsets = skipVector(8, "hnsw.offsets");
      expect(offsets == static_cast<uint64_t>(r.ntotal) + 1, "hnsw.offsets count", "ntotal + 1 = " + str(r.ntotal + 1),
             static_cast<int64_t>(offsets));
      skipVector(4, "hnsw.neighbors");
      int32_t ep = one<int32_t>("hnsw.entry_point");
      expect(r.ntotal == 0 ? ep == -1 : (ep >= 0 && ep < r.ntotal), "hnsw.entry_point",
             r.ntotal == 0 ? "-1 for an empty graph" : "a node id in 0.." + str(r.ntotal - 1), ep);
      int32_t ml = one<int32_t>("hnsw.max_level");
      expect(r.ntotal == 0 ? ml == -1 : (ml >= 0 && static_cast<uint64_t>(ml) + 2 <= cum), "hnsw.max_level",
             r.ntotal == 0 ? "-1 for an empty graph" : "0.." + str(static_cast<int64_t>(cum) - 2), ml);
      int32_t efc = one<int32_t>("hnsw.efConstruction");
      expect(efc >= 1 && efc <= kMaxEf, "hnsw.efConstruction", "1.." + str(kMaxEf), efc);
      int32_t efs = one<int32_t>("hnsw.efSearch");
      expect(efs >= 1 && efs <= kMaxEf, "hnsw.efSearch", "1.." + str(kMaxEf), efs);
      int32_t ub = one<int32_t>("hnsw.upper_beam");
      expect(ub >= 1 && ub <= kMaxUpperBeam, "hnsw.upper_beam", "1.." + str(kMaxUpperBeam), ub);
      uint64_t sat = pos_;
      Scanned s = scanIndex(Role::Storage, depth + 1, h);
      bool fits = is("IHNf") ? (s.h == fourccOf("IxFI") || s.h == fourccOf("IxF2") || s.h == fourccOf("IxFl"))
                : is("IHNp") ? (s.h == fourccOf("IxPq") || s.h == fourccOf("IxPQ") || s.h == fourccOf("IxPo"))
                             : s.h == fourccOf("IxSQ");
      if (!fits) bad("storage at byte " + str(static_cast<int64_t>(sat)) + " is " + s.name + ", which " + r.name + " cannot use");
      expect(s.d == r.d, "storage d", "the graph's d = " + str(r.d), s.d);
      expect(s.ntotal == r.ntotal, "storage ntotal", "the graph's ntotal = " + str(r.ntotal), s.ntotal);
    } else if (pt) {
      header(r);
      int32_t nt = one<int32_t>("number of transforms");
      expect(nt >= 1 && nt <= kMaxTransforms, "number of transforms", "1.." + str(kMaxTransforms), nt);
      int64_t dCur = r.d;
      for (int i = 0; i < nt; i++) {
        Transform t = vectorTransform();
        expect(t.dIn == dCur, "transform " + str(i) + " d_in",
               (i == 0 ? "the index's d = " : "the previous transform's d_out = ") + str(dCur), t.dIn);
        dCur = t.dOut;
      }
      Scanned s = scanIndex(Role::Inner, depth + 1);
      expect(s.d == dCur, "inner index d", "the last transform's d_out = " + str(dCur), s.d);
      expect(s.ntotal == r.ntotal, "inner index ntotal", "ntotal = " + str(r.ntotal), s.ntotal);
    } else if (refine) {
      header(r);
      Scanned base = scanIndex(Role::Inner, depth + 1);
      Scanned ref = scanIndex(Role::Storage, depth + 1);
      expect(base.d == r.d && ref.d == r.d, "base/refine index d", "d = " + str(r.d), base.d != r.d ? base.d : ref.d);
      expect(base.ntotal == r.ntotal, "base index ntotal", "ntotal = " + str(r.ntotal), base.ntotal);
      expect(ref.ntotal == r.ntotal, "refine index ntotal", "ntotal = " + str(r.ntotal), ref.ntotal);
      float kf = one<float>("k_factor");
      if (!(std::isfinite(kf) && kf >= 1 && kf <= kMaxRefineKFactor)) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%g", static_cast<double>(kf));
        bad("k_factor: expected 1.." + str(static_cast<int64_t>(kMaxRefineKFactor)) + ", found " + buf);
      }
    } else {  // idmap
      header(r);
      Scanned s = scanIndex(Role::Inner, depth + 1);
      expect(s.d == r.d, "inner index d", "d = " + str(r.d), s.d);
      expect(s.ntotal == r.ntotal, "inner index ntotal", "ntotal = " + str(r.ntotal), s.ntotal);
      uint64_t n = skipVector(8, "id_map");
      expect(n == static_cast<uint64_t>(r.ntotal), "id_map count (one id per vector)", "ntotal = " + str(r.ntotal),
             static_cast<int64_t>(n));
    }
    where_ = outer;
    return r;
  }
};

// ---------------------------------------------------------------------------------------------
// Contents of a loaded index that search and reconstruct trust (after FileScan accepted the sizes).

std::string className(const faiss::Index* idx) {
  if (dynamic_cast<const faiss::IndexIDMap2*>(idx)) return "IndexIDMap2";
  if (dynamic_cast<const faiss::IndexIDMap*>(idx)) return "IndexIDMap";
  if (dynamic_cast<const faiss::IndexPreTransform*>(idx)) return "IndexPreTransform";
  if (dynamic_cast<const faiss::IndexRefine*>(idx)) return "IndexRefine";
  if (dynamic_cast<const faiss::IndexHNSW*>(idx)) return "IndexHNSW";
  if (dynamic_cast<const faiss::IndexIVF*>(idx)) return "IndexIVF";
  if (dynamic_cast<const faiss::IndexFlat*>(idx)) return "IndexFlat";
  return "Index";
}

void checkHnswGraph(const faiss::HNSW& g, int64_t ntotal, const std::string& where) {
  auto bad = [&](const std::string& what) { throw DamagedFile(where + ": " + what); };
  const auto& cum = g.cum_nneighbor_per_level;
  int64_t nLevels = static_cast<int64_t>(cum.size()) - 1;  // levels a node can have: 1..nLevels
  if (cum.empty() || cum[0] != 0) bad("hnsw.cum_nneighbor_per_level must start with 0");
  for (size_t i = 1; i < cum.size(); i++) {
    if (cum[i] < cum[i - 1] || cum[i] > (1 << 20)) {
      bad("hnsw.cum_nneighbor_per_level[" + str(i) + "] = " + str(cum[i]) + ": expected non-decreasing values ≤ 2^20");
    }
  }
  if (static_cast<int64_t>(g.levels.size()) != ntotal || static_cast<int64_t>(g.offsets.size()) != ntotal + 1) {
    bad("hnsw.levels / hnsw.offsets hold " + str(g.levels.size()) + " / " + str(g.offsets.size()) +
        " entries, expected ntotal = " + str(ntotal) + " / ntotal + 1");
  }
  if (g.offsets[0] != 0) bad("hnsw.offsets[0] = " + str(static_cast<int64_t>(g.offsets[0])) + ", expected 0");
  int top = -1;
  for (int64_t i = 0; i < ntotal; i++) {
    int lv = g.levels[i];
    if (lv < 1 || lv > nLevels) {
      bad("hnsw.levels[" + str(i) + "] = " + str(lv) + ", expected 1.." + str(nLevels));
    }
    top = std::max(top, lv - 1);
    uint64_t want = g.offsets[i] + static_cast<uint64_t>(cum[lv]);
    if (g.offsets[i + 1] != want) {
      bad("hnsw.offsets[" + str(i + 1) + "] = " + str(static_cast<int64_t>(g.offsets[i + 1])) + ", expected offsets[" +
          str(i) + "] + " + str(cum[lv]) + " = " + str(static_cast<int64_t>(want)) + " for a node of level " + str(lv - 1));
    }
  }
  if (g.offsets[ntotal] != g.neighbors.size()) {
    bad("hnsw.offsets[ntotal] = " + str(static_cast<int64_t>(g.offsets[ntotal])) + ", expected the neighbor count " +
        str(g.neighbors.size()));
  }
  if (ntotal == 0) {
    if (g.entry_point != -1 || g.max_level != -1) bad("an empty graph must have entry_point = max_level = -1");
    return;
  }
  if (g.entry_point < 0 || g.entry_point >= ntotal) {
    bad("hnsw.entry_point = " + str(g.entry_point) + ", expected a node id in 0.." + str(ntotal - 1));
  }
  if (g.max_level != g.levels[g.entry_point] - 1 || g.max_level != top) {
    bad("hnsw.max_level = " + str(g.max_level) + ", expected the level of the entry point (" +
        str(g.levels[g.entry_point] - 1) + ") and of the highest node (" + str(top) + ")");
  }
  // every link at level l points to a node that exists at level l
  for (int64_t i = 0; i < ntotal; i++) {
    for (int l = 0; l < g.levels[i]; l++) {
      for (uint64_t j = g.offsets[i] + cum[l]; j < g.offsets[i] + cum[l + 1]; j++) {
        int v = g.neighbors[j];
        if (v == -1) continue;
        if (v < -1 || v >= ntotal) {
          bad("hnsw.neighbors[" + str(static_cast<int64_t>(j)) + "] (node " + str(i) + ", level " + str(l) + ") = " +
              str(v) + ", expected -1 or a node id in 0.." + str(ntotal - 1));
        }
        if (g.levels[v] <= l) {
          bad("hnsw.neighbors[" + str(static_cast<int64_t>(j)) + "]: node " + str(i) + " links at level " + str(l) +
              " to node " + str(v) + ", which only exists up to level " + str(g.levels[v] - 1));
        }
      }
    }
  }
}

// positional: the labels this index returns are used as positions by the index around it
// (IDMap's id_map, a Refine's refine index), so stored ids (IVF) must be valid positions.
void checkLoaded(const faiss::Index* idx, const std::string& outer, bool positional) {
  std::string where = (outer.empty() ? "" : outer + " > ") + className(idx);
  auto bad = [&](const std::string& what) { throw DamagedFile(where + ": " + what); };
  if (auto* m = dynamic_cast<const faiss::IndexIDMap*>(idx)) {
    if (static_cast<int64_t>(m->id_map.size()) != m->ntotal) {
      bad("id_map holds " + str(m->id_map.size()) + " ids, expected ntotal = " + str(m->ntotal));
    }
    if (auto* m2 = dynamic_cast<const faiss::IndexIDMap2*>(idx)) {
      if (m2->rev_map.size() != m2->id_map.size()) {
        for (size_t i = 0; i < m2->id_map.size(); i++) {
          auto it = m2->rev_map.find(m2->id_map[i]);
          if (it != m2->rev_map.end() && it->second != static_cast<idx_t>(i)) {
            bad("id " + str(m2->id_map[i]) + " appears twice in id_map (positions " + str(std::min<int64_t>(i, it->second)) +
                " and " + str(std::max<int64_t>(i, it->second)) + "): ids must be unique");
          }
        }
        bad("id_map has duplicate ids");
      }
    }
    return checkLoaded(m->index, where, true);
  }
  if (auto* pt = dynamic_cast<const faiss::IndexPreTransform*>(idx)) {
    for (size_t i = 0; i < pt->chain.size(); i++) {
      const faiss::VectorTransform* vt = pt->chain[i];
      if (auto* rd = dynamic_cast<const faiss::RemapDimensionsTransform*>(vt)) {
        for (size_t j = 0; j < rd->map.size(); j++) {
          if (rd->map[j] < -1 || rd->map[j] >= rd->d_in) {
            bad("transform " + str(i) + ": map[" + str(j) + "] = " + str(rd->map[j]) + ", expected -1 or 0.." +
                str(rd->d_in - 1));
          }
        }
      }
    }
    return checkLoaded(pt->index, where, positional);
  }
  if (auto* rf = dynamic_cast<const faiss::IndexRefine*>(idx)) {
    checkLoaded(rf->base_index, where + " (base)", true);
    return checkLoaded(rf->refine_index, where + " (refine)", true);
  }
  if (auto* h = dynamic_cast<const faiss::IndexHNSW*>(idx)) {
    checkHnswGraph(h->hnsw, h->ntotal, where);
    return;
  }
  if (auto* ivf = dynamic_cast<const faiss::IndexIVF*>(idx)) {
    checkLoaded(ivf->quantizer, where + " (quantizer)", true);
    auto* lists = dynamic_cast<const faiss::ArrayInvertedLists*>(ivf->invlists);
    if (!lists || lists->nlist != ivf->nlist) bad("the inverted lists are missing or do not match nlist");
    for (size_t l = 0; l < lists->nlist; l++) {
      if (lists->codes[l].size() != lists->ids[l].size() * lists->code_size) bad("list " + str(l) + ": codes and ids differ");
      if (!positional) continue;
      for (size_t o = 0; o < lists->ids[l].size(); o++) {
        idx_t id = lists->ids[l][o];
        if (id < 0 || id >= ivf->ntotal) {
          bad("list " + str(l) + " holds id " + str(id) + " where positions 0.." + str(ivf->ntotal - 1) +
              " are expected (the IVF index is wrapped in an IDMap or a Refine)");
        }
      }
    }
    auto validLo = [&](idx_t lo) {
      if (lo == -1) return true;
      uint64_t list = faiss::lo_listno(lo), off = faiss::lo_offset(lo);
      return list < lists->nlist && off < lists->ids[list].size();
    };
    const faiss::DirectMap& dm = ivf->direct_map;
    for (size_t i = 0; i < dm.array.size(); i++) {
      if (!validLo(dm.array[i])) bad("direct_map.array[" + str(i) + "] points outside the inverted lists");
    }
    for (const auto& kv : dm.hashtable) {
      if (!validLo(kv.second)) bad("direct_map entry of id " + str(kv.first) + " points outside the inverted lists");
    }
    return;
  }
  // Flat, PQ, SQ: FileScan checked the code sizes against ntotal
}

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
  // An exception must not leave an OpenMP region (std::terminate): each thread keeps its own.
  std::vector<std::exception_ptr> errors(nt);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    try {
      size_t begin = nb * t / nt, end = nb * (t + 1) / nt;
      auto& heaps = local[t];
      for (size_t i = begin; i < end; i++) {
        const float* row = xb + i * d;
        for (size_t j = 0; j < nq; j++) heaps[j].push(kDot(row, q + j * d, d), static_cast<idx_t>(i));
      }
    } catch (...) {
      errors[t] = std::current_exception();
    }
  }
  for (auto& e : errors) {
    if (e) std::rethrow_exception(e);
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

// Searches with k' = min(k, ntotal) (faiss cannot return more; HNSW's candidate queue and the
// per-thread heaps are sized from k), then pads rows to k with label -1.
void doSearch(faiss::Index* top, const float* x, size_t nq, size_t k, const SearchKnobs& knobs,
              float* D, idx_t* L) {
  size_t kEff = std::min<size_t>(k, static_cast<size_t>(std::max<idx_t>(top->ntotal, 1)));
  if (kEff < k) {
    std::vector<float> d2(nq * kEff);
    std::vector<idx_t> l2(nq * kEff);
    doSearch(top, x, nq, kEff, knobs, d2.data(), l2.data());
    float pad = top->metric_type == faiss::METRIC_INNER_PRODUCT ? -std::numeric_limits<float>::infinity()
                                                                : std::numeric_limits<float>::infinity();
    for (size_t i = 0; i < nq; i++) {
      std::copy(d2.begin() + i * kEff, d2.begin() + (i + 1) * kEff, D + i * k);
      std::copy(l2.begin() + i * kEff, l2.begin() + (i + 1) * kEff, L + i * k);
      std::fill(D + i * k + kEff, D + (i + 1) * k, pad);
      std::fill(L + i * k + kEff, L + (i + 1) * k, idx_t(-1));
    }
    return;
  }
  Parts p = analyse(top);
  // Input goes through the pre-transform (if any) by hand so that search parameters reach the core.
  std::unique_ptr<const float[]> owned;
  const float* xc = x;
  if (p.pre) {
    xc = p.pre->apply_chain(nq, x);
    if (xc != x) owned.reset(xc);
  }
  const faiss::Index* core = p.core;
  bool fast = p.flat && p.flat->metric_type == faiss::METRIC_INNER_PRODUCT && nq < 20 && k <= 1024;
  if (fast) {
    flatIpTopK(p.flat->get_xb(), p.flat->ntotal, p.flat->d, xc, nq, k, D, L);
  } else if (p.ivf) {
    faiss::SearchParametersIVF params;
    // faiss clamps nprobe to nlist; 0 (a stored value from a file) would be an error there
    params.nprobe = std::max<size_t>(1, knobs.nprobe > 0 ? static_cast<size_t>(knobs.nprobe) : p.ivf->nprobe);
    params.max_codes = p.ivf->max_codes;
    p.ivf->search(nq, xc, k, D, L, &params);
  } else if (p.hnsw) {
    faiss::SearchParametersHNSW params;
    // efSearch sizes a candidate queue per OpenMP thread inside faiss, where a bad_alloc would
    // terminate the process: beyond ntotal it finds nothing more, so it is clamped to 1..ntotal.
    int64_t ef = knobs.efSearch > 0 ? knobs.efSearch : p.hnsw->hnsw.efSearch;
    ef = std::max<int64_t>(1, std::min<int64_t>({ef, std::max<int64_t>(p.hnsw->ntotal, 1), kMaxEf}));
    params.efSearch = static_cast<int>(ef);
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
      if (L[i] >= static_cast<idx_t>(map.size())) {
        throw std::runtime_error("the inner index returned position " + str(L[i]) + " but the id map holds " +
                                 str(map.size()) + " ids (inconsistent index)");
      }
      if (L[i] >= 0) L[i] = map[L[i]];
    }
  }
}

// Reconstruct the vectors with the given labels. IVF indexes are scanned list by list (no direct
// map needed, so merge_from keeps working).
void doReconstruct(faiss::Index* top, const idx_t* labels, size_t n, float* out) {
  Parts p = analyse(top);
  if (p.idmap || !p.ivf) {
    for (size_t i = 0; i < n; i++) {
      bool known = p.idmap2 ? p.idmap2->rev_map.count(labels[i]) > 0
                 : p.idmap  ? false
                            : labels[i] >= 0 && labels[i] < top->ntotal;
      if (!known) {
        if (p.idmap && !p.idmap2) throw std::invalid_argument("an IndexIDMap (not IDMap2) cannot reconstruct vectors");
        throw std::invalid_argument("label " + str(labels[i]) + " is not in the index");
      }
      top->reconstruct(labels[i], out + i * top->d);
    }
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

// An integer in [min, max] (max ≤ 2^53), checked before any cast.
int64_t needInt(const Napi::Value& v, const std::string& what, int64_t min, int64_t max, const std::string& hint = "") {
  if (!v.IsNumber()) {
    const char* got = v.IsBigInt() ? "a bigint" : v.IsString() ? "a string" : "another type";
    throw Napi::TypeError::New(v.Env(), what + " must be a number, got " + got);
  }
  double x = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(x) || std::floor(x) != x || x < static_cast<double>(min) || x > static_cast<double>(max)) {
    throw Napi::RangeError::New(v.Env(), what + " must be an integer in " + str(min) + ".." + str(max) +
                                             ", got " + v.ToString().Utf8Value() + hint);
  }
  return static_cast<int64_t>(x);
}

constexpr int64_t kMaxSafeInteger = (int64_t(1) << 53) - 1;

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
    int64_t d = needInt(info[0], "FaissIndex.create: d (dimension)", 1, kMaxDim);
    if (!info[1].IsString()) throwType(env, "description must be a string (faiss index_factory syntax)");
    std::string desc = info[1].As<Napi::String>().Utf8Value();
    try {
      checkDescription(desc, d, 0);
    } catch (const DescriptionError& e) {
      throw Napi::Error::New(env, "FaissIndex.create: invalid index description \"" + desc + "\" for d = " + str(d) +
                                      ": " + e.what());
    }
    std::unique_ptr<faiss::Index> idx;
    try {
      idx.reset(faiss::index_factory(static_cast<int>(d), desc.c_str(), faiss::METRIC_INNER_PRODUCT));
    } catch (const faiss::FaissException& e) {
      throw Napi::Error::New(env, "FaissIndex.create: invalid index description \"" + desc + "\": " + e.msg);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, "FaissIndex.create: invalid index description \"" + desc + "\": " + e.what());
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
          struct stat st;
          if (fstat(fileno(f), &st) != 0) throw std::runtime_error("cannot stat " + path_ + ": " + std::strerror(errno));
          if (!S_ISREG(st.st_mode)) throw std::runtime_error(path_ + " is not a regular file");
          // 1. sizes and structure against the file (before faiss allocates anything)
          FileScan(f, static_cast<uint64_t>(st.st_size)).scanFile();
          if (fseeko(f, 0, SEEK_SET) != 0) throw std::runtime_error("cannot seek in " + path_ + ": " + std::strerror(errno));
          // 2. faiss reads it
          index_.reset(faiss::read_index(f));
          // the file must end where the index ends: trailing bytes mean a corrupt or foreign file
          if (std::fgetc(f) != EOF) throw std::runtime_error(path_ + " has trailing bytes after the index");
          // 3. the contents search trusts
          checkLoaded(index_.get(), "", false);
        } catch (const DamagedFile& e) {
          index_.reset();
          SetError("FaissIndex.read: " + path_ + " is not a readable faiss index (damaged, truncated, or of a kind " +
                   "langchain-dpr does not read): " + e.what() + ". Restore the file from a backup or rebuild the index.");
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
    int64_t n = needInt(info[0], "FaissIndex.setNumThreads: n", 1, maxThreads(),
                        " (at most 4 × the " + str(omp_get_num_procs()) + " CPUs, or 16)");
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
    {
      faiss::Index* index = idx(env);
      if (analyse(index).hnsw && static_cast<uint64_t>(index->ntotal) + n > static_cast<uint64_t>(INT32_MAX)) {
        throw Napi::RangeError::New(env, "FaissIndex.add: an HNSW index holds at most 2^31 − 1 vectors (32-bit node ids); it has " +
                                             str(index->ntotal) + ", adding " + str(n));
      }
    }
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
    std::string op = std::string("FaissIndex.") + (reconstruct ? "searchAndReconstruct" : "search");
    int64_t k = needInt(info[1], op + ": k", 1, kMaxK, " (rows hold -1 labels beyond the stored vectors)");
    SearchKnobs knobs;
    if (info.Length() > 2 && info[2].IsObject()) {
      auto o = info[2].As<Napi::Object>();
      if (o.Has("nprobe") && !o.Get("nprobe").IsUndefined()) {
        knobs.nprobe = needInt(o.Get("nprobe"), "FaissIndex.search: nprobe", 1, kMaxNlist, " (values above nlist probe every list)");
      }
      if (o.Has("efSearch") && !o.Get("efSearch").IsUndefined()) {
        knobs.efSearch = needInt(o.Get("efSearch"), "FaissIndex.search: efSearch", 1, kMaxEf,
                                 " (values above the vector count search no wider)");
      }
    }
    size_t d = idx(env)->d;
    if (x.ElementLength() == 0 || x.ElementLength() % d != 0) {
      throw Napi::RangeError::New(env, "FaissIndex.search: queries have " + std::to_string(x.ElementLength()) +
                                           " values, expected a non-zero multiple of d=" + std::to_string(d));
    }
    size_t nq = x.ElementLength() / d;
    // result arrays are allocated here, in V8: sizes past these limits would abort the process
    if (static_cast<uint64_t>(nq) * static_cast<uint64_t>(k) > static_cast<uint64_t>(kMaxResultEntries)) {
      throw Napi::RangeError::New(env, "FaissIndex.search: " + str(nq) + " queries × k = " + str(k) + " gives " +
                                           str(static_cast<int64_t>(nq) * k) + " results, over the limit of " +
                                           str(kMaxResultEntries) + " (2^27) per call; search in smaller batches");
    }
    if (reconstruct &&
        static_cast<uint64_t>(nq) * static_cast<uint64_t>(k) * d > static_cast<uint64_t>(kMaxVectorFloats)) {
      throw Napi::RangeError::New(env, "FaissIndex.searchAndReconstruct: " + str(nq) + " queries × k = " + str(k) +
                                           " × d = " + str(d) + " floats, over the limit of " + str(kMaxVectorFloats) +
                                           " (2^28, 1 GiB) per call; search in smaller batches or with a smaller k");
    }
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
      if (p.idmap && p.ivf) {
        // IVF keeps the positions IDMap maps as stored ids, which removal does not renumber
        throw std::invalid_argument("an IDMap around an IVF index cannot remove vectors (ids would no longer match); " +
                                    std::string("create IVF indexes without IDMap: they keep ids themselves"));
      }
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
    int64_t addId = needInt(info[1], "FaissIndex.mergeFrom: addId", 0, kMaxSafeInteger);
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
    if (static_cast<uint64_t>(ids.ElementLength()) * d > static_cast<uint64_t>(kMaxVectorFloats)) {
      throw Napi::RangeError::New(env, "FaissIndex.reconstruct: " + str(ids.ElementLength()) + " ids × d = " + str(d) +
                                           " floats, over the limit of " + str(kMaxVectorFloats) +
                                           " (2^28, 1 GiB) per call; reconstruct in smaller batches");
    }
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
    int64_t n = needInt(info[0], "FaissIndex.reserve: n", 0, int64_t(1) << 40);
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
  Napi::Object limits = Napi::Object::New(env);
  limits.Set("maxDimension", static_cast<double>(kMaxDim));
  limits.Set("maxK", static_cast<double>(kMaxK));
  limits.Set("maxResultEntries", static_cast<double>(kMaxResultEntries));
  limits.Set("maxVectorFloats", static_cast<double>(kMaxVectorFloats));
  limits.Set("maxEfSearch", static_cast<double>(kMaxEf));
  limits.Set("maxNlist", static_cast<double>(kMaxNlist));
  limits.Set("minHnswM", static_cast<double>(kMinHnswM));
  limits.Set("maxHnswM", static_cast<double>(kMaxHnswM));
  limits.Set("maxPqBits", static_cast<double>(kMaxPqBits));
  limits.Set("maxTableFloats", static_cast<double>(kMaxTableFloats));
  limits.Set("maxNesting", kMaxNesting);
  limits.Set("maxTransforms", kMaxTransforms);
  exports.Set("limits", limits);
  return exports;
}

}  // namespace

NODE_API_MODULE(faiss_dpr, Init)
