# ringlog as a package (RINGLOG_INSTALL): headers, ringlog::core and, with
# the client built, ringlog::client; the CMake package for
# find_package(ringlog CONFIG) and pkg-config files ringlog-core and
# ringlog-client. ringlogd and ringlogctl install from their own directories.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(RINGLOG_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/ringlog)
set(RINGLOG_PKGCONFIG_DIR ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

install(TARGETS ringlog_core EXPORT ringlogCoreTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY core/include/ringlog DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
  FILES_MATCHING PATTERN "*.h")
install(EXPORT ringlogCoreTargets NAMESPACE ringlog:: DESTINATION ${RINGLOG_CMAKE_DIR})

# The client's header includes the generated messages (ringlog/v1/*.pb.h),
# so ringlog_proto and those headers install with it.
if(RINGLOG_BUILD_CLIENT)
  install(TARGETS ringlog_proto ringlog_client EXPORT ringlogClientTargets
    ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
    LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
    RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
    INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
  install(DIRECTORY client/include/ringlog DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
    FILES_MATCHING PATTERN "*.h")
  set(RINGLOG_PROTO_GEN ${PROJECT_BINARY_DIR}/proto/gen/ringlog/v1)  # RINGLOG_PROTO_OUT in proto/
  install(FILES ${RINGLOG_PROTO_GEN}/ringlog.pb.h ${RINGLOG_PROTO_GEN}/ringlog.grpc.pb.h
    DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/ringlog/v1)
  install(EXPORT ringlogClientTargets NAMESPACE ringlog:: DESTINATION ${RINGLOG_CMAKE_DIR})
endif()

configure_package_config_file(cmake/ringlogConfig.cmake.in
  ${PROJECT_BINARY_DIR}/ringlogConfig.cmake INSTALL_DESTINATION ${RINGLOG_CMAKE_DIR})
# 0.x: a minor version may break what the one before offered.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/ringlogConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/ringlogConfig.cmake
  ${PROJECT_BINARY_DIR}/ringlogConfigVersion.cmake DESTINATION ${RINGLOG_CMAKE_DIR})

# pkg-config files find the prefix from where they are (${pcfiledir}), so
# they hold wherever `cmake --install --prefix` puts them. A static library
# needs its private dependencies on the link line too: they go in Requires.
cmake_path(RELATIVE_PATH CMAKE_INSTALL_PREFIX
  BASE_DIRECTORY ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig OUTPUT_VARIABLE RINGLOG_PC_PREFIX)
set(RINGLOG_PC_PREFIX "\${pcfiledir}/${RINGLOG_PC_PREFIX}")
foreach(d IN ITEMS LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${d}}")
    set(RINGLOG_PC_${d} "${CMAKE_INSTALL_${d}}")
  else()
    set(RINGLOG_PC_${d} "\${prefix}/${CMAKE_INSTALL_${d}}")
  endif()
endforeach()
set(RINGLOG_PC_CLIENT_PRIVATE "absl_random_random libcrypto")
if(BUILD_SHARED_LIBS)
  set(RINGLOG_PC_CLIENT_REQUIRES_PRIVATE "Requires.private: ${RINGLOG_PC_CLIENT_PRIVATE}")
  set(RINGLOG_PC_CLIENT_PRIVATE "")
else()
  set(RINGLOG_PC_CLIENT_REQUIRES_PRIVATE "")
  set(RINGLOG_PC_CLIENT_PRIVATE " ${RINGLOG_PC_CLIENT_PRIVATE}")
endif()
configure_file(cmake/ringlog-core.pc.in ${PROJECT_BINARY_DIR}/ringlog-core.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/ringlog-core.pc DESTINATION ${RINGLOG_PKGCONFIG_DIR})
if(RINGLOG_BUILD_CLIENT)
  configure_file(cmake/ringlog-client.pc.in ${PROJECT_BINARY_DIR}/ringlog-client.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/ringlog-client.pc DESTINATION ${RINGLOG_PKGCONFIG_DIR})
endif()
