# libFuzzer harnesses (tests/fuzz/fuzz_<name>.c), included by CMakeLists.txt
# when QUIVER_FUZZ=ON.  Each is one program build-fuzz/bin/fuzz_<name>, linked
# with -fsanitize=fuzzer against the module library whose parser it feeds
# (every module is compiled with fuzzer-no-link + ASan + UBSan above).
#
# fuzz_raft compiles raft's decoding files from QUIVER_RAFT_SOURCE_DIR (the
# patched, configured source ./deploy/build keeps in .deps/raft-work/src/raft)
# into the harness, with the same instrumentation and raft's assertions on;
# without that directory the harness is skipped with a warning.

function(quiver_fuzz name)
  add_executable(fuzz_${name} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_${name}.c)
  target_include_directories(fuzz_${name} PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/tests/fuzz)
  target_link_options(fuzz_${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_${name} PRIVATE ${ARGN})
endfunction()

quiver_fuzz(resp quiver_node)
quiver_fuzz(cypher quiver_query)
quiver_fuzz(command quiver_statemachine ${XXHASH_LIB})
quiver_fuzz(result quiver_statemachine ${XXHASH_LIB})
quiver_fuzz(forward quiver_node ${XXHASH_LIB})

set(QUIVER_RAFT_SOURCE_DIR "" CACHE PATH "patched raft source for fuzz_raft")
if(QUIVER_RAFT_SOURCE_DIR AND EXISTS ${QUIVER_RAFT_SOURCE_DIR}/src/uv_encoding.c
   AND EXISTS ${QUIVER_RAFT_SOURCE_DIR}/include/raft.h)
  set(raft_src ${QUIVER_RAFT_SOURCE_DIR}/src)
  set(raft_files ${raft_src}/uv_encoding.c ${raft_src}/configuration.c ${raft_src}/byte.c
                 ${raft_src}/heap.c)
  add_executable(fuzz_raft ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_raft.c ${raft_files})
  # The source root, not src/: raft's src/uv.h would hide libuv's <uv.h>.
  target_include_directories(fuzz_raft PRIVATE ${CMAKE_SOURCE_DIR}/tests/fuzz ${QUIVER_RAFT_SOURCE_DIR})
  # raft's own code: its warnings are not ours to fail on.
  set_source_files_properties(${raft_files} PROPERTIES COMPILE_OPTIONS "-Wno-error;-w")
  target_link_options(fuzz_raft PRIVATE -fsanitize=fuzzer)
  target_link_libraries(fuzz_raft PRIVATE PkgConfig::UV)
else()
  message(WARNING "fuzz_raft skipped: QUIVER_RAFT_SOURCE_DIR='${QUIVER_RAFT_SOURCE_DIR}' is not a configured raft source")
endif()
