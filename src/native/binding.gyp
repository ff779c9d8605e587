# langchain-dpr's own addon over the system libfaiss (static) + OpenBLAS. Built by
# scripts/build-native.sh into src/native/build/Release/faiss_dpr.node.
{
  "targets": [
    {
      "target_name": "faiss_dpr",
      "sources": ["faiss_dpr.cc"],
      "include_dirs": ["<!(echo $LANGCHAIN_DPR_NAPI_INCLUDE)"],
      "defines": ["NAPI_VERSION=8", "NODE_ADDON_API_CPP_EXCEPTIONS", "NODE_ADDON_API_CPP_EXCEPTIONS_ALL"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      # no -march: the AVX2/FMA kernel is selected at run time (target attribute + cpu check)
      "cflags_cc": ["-std=c++17", "-O3", "-fexceptions", "-frtti", "-fopenmp"],
      "libraries": ["-lfaiss", "-llapack", "-lblas", "-fopenmp"]
    }
  ]
}
