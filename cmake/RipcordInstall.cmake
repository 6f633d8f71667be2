# Install rules: headers under include/ripcord/, libripcord.a under lib/, the
# package config under lib/cmake/ripcord/ and lib/pkgconfig/ripcord.pc.
include(CMakePackageConfigHelpers)

install(TARGETS ripcord EXPORT ripcordTargets
  ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
  INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/ripcord"
  DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
  FILES_MATCHING PATTERN "*.h")

set(RIPCORD_CMAKE_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/ripcord")
install(EXPORT ripcordTargets
  NAMESPACE ripcord::
  DESTINATION "${RIPCORD_CMAKE_DIR}")
configure_package_config_file(
  "${CMAKE_CURRENT_LIST_DIR}/ripcordConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/ripcordConfig.cmake"
  INSTALL_DESTINATION "${RIPCORD_CMAKE_DIR}")
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/ripcordConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion)
install(FILES
  "${PROJECT_BINARY_DIR}/ripcordConfig.cmake"
  "${PROJECT_BINARY_DIR}/ripcordConfigVersion.cmake"
  DESTINATION "${RIPCORD_CMAKE_DIR}")

# pkg-config: Requires names Abseil's own .pc files (Debian ships one per
# component), so `pkg-config --libs ripcord` lists them after -lripcord, the
# order a static archive needs.
set(RIPCORD_PC_REQUIRES "")
foreach(dep IN LISTS RIPCORD_ABSL_DEPS)
  string(REPLACE "absl::" "absl_" pc "${dep}")
  list(APPEND RIPCORD_PC_REQUIRES "${pc}")
endforeach()
list(JOIN RIPCORD_PC_REQUIRES ", " RIPCORD_PC_REQUIRES)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
  set(RIPCORD_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
  set(RIPCORD_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
endif()
if(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(RIPCORD_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
  set(RIPCORD_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file("${CMAKE_CURRENT_LIST_DIR}/ripcord.pc.in"
               "${PROJECT_BINARY_DIR}/ripcord.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/ripcord.pc"
  DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
