# Writes OUTPUT from INPUT with PROJECT_VERSION and the git revision of
# SOURCE_DIR. Run at every build (cmake -P), so the revision follows commits
# without a new configure; configure_file() leaves OUTPUT untouched when its
# text is the same, so an unchanged revision compiles nothing.
#
#   cmake -DSOURCE_DIR=... -DINPUT=... -DOUTPUT=... -DPROJECT_VERSION=...
#         [-DGIT_EXECUTABLE=...] -P version.cmake
set(RINGLOG_GIT_REVISION unknown)
if(GIT_EXECUTABLE)
  # Only when SOURCE_DIR is the top of a checkout: a tree copied into some
  # other repository must not take that repository's revision.
  execute_process(COMMAND "${GIT_EXECUTABLE}" rev-parse --show-toplevel
                  WORKING_DIRECTORY "${SOURCE_DIR}"
                  OUTPUT_VARIABLE top RESULT_VARIABLE rc
                  OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
  if(rc EQUAL 0)
    file(REAL_PATH "${top}" top)
    file(REAL_PATH "${SOURCE_DIR}" src)
  endif()
  if(rc EQUAL 0 AND top STREQUAL src)
    # --no-optional-locks: a build must not contend for the index with git
    # commands run at the same time.
    execute_process(COMMAND "${GIT_EXECUTABLE}" --no-optional-locks describe --always --dirty
                    WORKING_DIRECTORY "${SOURCE_DIR}"
                    OUTPUT_VARIABLE rev RESULT_VARIABLE rc
                    OUTPUT_STRIP_TRAILING_WHITESPACE ERROR_QUIET)
    if(rc EQUAL 0 AND NOT rev STREQUAL "")
      set(RINGLOG_GIT_REVISION "${rev}")
    endif()
  endif()
endif()
configure_file("${INPUT}" "${OUTPUT}" @ONLY)
