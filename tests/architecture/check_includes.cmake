# The layering check: cmake -DSOURCE_DIR=<tree> -DMANIFEST=<manifest.cmake> -P check_includes.cmake
#
# MANIFEST (written by backbone_write_module_manifest() in cmake/BackboneModule.cmake) names, for
# every module, its folder under src/, the headers it owns, the headers it may include (its own
# and those of the modules it depends on) and the third-party header prefixes it may include.
# Every #include of every file under src/ and of every public header must then be:
#   - a header of a module the file's module may see, or
#   - a header of a third-party package that module links, or
#   - a system header (an <...> include that no package claims).
# A quoted include that is nobody's header ("../store/x.h") is an error too, as is a file under
# src/ that belongs to no module. All violations are printed; any makes the check fail.
cmake_minimum_required(VERSION 3.25)
include(${MANIFEST})

set(violations)
foreach(m ${MODULES})
  foreach(h ${${m}_OWN})
    string(MAKE_C_IDENTIFIER "${h}" id)
    set(OWNER_${id} ${m})
  endforeach()
  string(MAKE_C_IDENTIFIER "${${m}_DIR}" id)
  set(DIR_${id} ${m})
endforeach()

function(check_file module file)
  file(STRINGS ${file} lines REGEX "^[ \t]*#[ \t]*include[ \t]*[<\"]")
  file(RELATIVE_PATH rel ${SOURCE_DIR} ${file})
  foreach(line ${lines})
    if(NOT line MATCHES "#[ \t]*include[ \t]*([<\"])([^>\"]+)[>\"]")
      continue()
    endif()
    set(kind ${CMAKE_MATCH_1})
    set(path ${CMAKE_MATCH_2})
    string(MAKE_C_IDENTIFIER "${path}" id)
    if(DEFINED OWNER_${id})
      if(NOT path IN_LIST ${module}_ALLOWED)
        list(APPEND violations
             "${rel} includes \"${path}\", a header of module ${OWNER_${id}}, which ${module} does not depend on")
      endif()
      continue()
    endif()
    set(package_header FALSE)
    foreach(prefix ${PACKAGE_PREFIXES})
      string(FIND "${path}" "${prefix}" at)
      if(at EQUAL 0)
        set(package_header TRUE)
      endif()
    endforeach()
    if(package_header)
      set(allowed FALSE)
      foreach(prefix ${${module}_PREFIXES})
        string(FIND "${path}" "${prefix}" at)
        if(at EQUAL 0)
          set(allowed TRUE)
        endif()
      endforeach()
      if(NOT allowed)
        list(APPEND violations
             "${rel} includes <${path}>, of a package that module ${module} does not link")
      endif()
    elseif(kind STREQUAL "\"")
      list(APPEND violations "${rel} includes \"${path}\", which is no module's header")
    endif()
  endforeach()
  set(violations ${violations} PARENT_SCOPE)
endfunction()

foreach(m ${MODULES})
  file(GLOB files ${SOURCE_DIR}/src/${${m}_DIR}/*.h ${SOURCE_DIR}/src/${${m}_DIR}/*.cc)
  foreach(h ${${m}_OWN})
    if(h MATCHES "^backbone/" AND EXISTS ${SOURCE_DIR}/include/${h})
      list(APPEND files ${SOURCE_DIR}/include/${h})
    endif()
  endforeach()
  foreach(f ${files})
    check_file(${m} ${f})
  endforeach()
endforeach()

# Every file under src/ is in some module's folder.
file(GLOB_RECURSE all RELATIVE ${SOURCE_DIR}/src ${SOURCE_DIR}/src/*.h ${SOURCE_DIR}/src/*.cc)
foreach(f ${all})
  get_filename_component(dir ${f} DIRECTORY)
  string(MAKE_C_IDENTIFIER "${dir}" id)
  if(NOT DEFINED DIR_${id})
    list(APPEND violations "src/${f} is in no module's folder")
  endif()
endforeach()

list(LENGTH violations n)
if(n GREATER 0)
  list(JOIN violations "\n  " text)
  message(FATAL_ERROR "${n} include(s) break the module graph of doc/architecture.md:\n  ${text}")
endif()
list(LENGTH MODULES nm)
message(STATUS "every include of ${nm} modules is of a module it depends on")
