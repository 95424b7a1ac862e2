# SPDX-License-Identifier: MIT
# Included by tests/CMakeLists.txt: CTest runs every fuzz target for a few seconds on its
# committed corpus. fuzz/build configures and builds build/fuzz (clang) first; without clang
# everything here is skipped (exit 77).
set(SB_FUZZ_SMOKE_SECONDS 5 CACHE STRING "How long CTest runs each fuzz target")
set(run ${CMAKE_SOURCE_DIR}/tests/fuzz/run.sh)
add_test(NAME fuzz/build COMMAND ${run} build WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(fuzz/build PROPERTIES FIXTURES_SETUP sb_fuzz_build LABELS fuzz TIMEOUT 600
                                           SKIP_RETURN_CODE 77)
file(GLOB fuzz_corpora LIST_DIRECTORIES true ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/*)
foreach(dir ${fuzz_corpora})
    get_filename_component(name ${dir} NAME)
    add_test(NAME fuzz/${name} COMMAND ${run} ${SB_FUZZ_SMOKE_SECONDS} ${name}
             WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
    set_tests_properties(fuzz/${name} PROPERTIES FIXTURES_REQUIRED sb_fuzz_build LABELS fuzz
                                                 TIMEOUT 120)
endforeach()
