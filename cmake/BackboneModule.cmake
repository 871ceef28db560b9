# backbone_module(): one module of doc/architecture.md, as one build target.
#
#   backbone_module(<name> DIR <folder under src/> [EXECUTABLE <program>]
#                   [API <headers of include/backbone/>]
#                   [GENERATED <headers of build/generated/backbone/>]
#                   [DEPS <modules whose headers this module's headers use>]
#                   [PRIVATE_DEPS <modules only its .cc files use>]
#                   [PACKAGES <third-party packages of its headers>]
#                   [PRIVATE_PACKAGES <third-party packages of its .cc files>])
#
# A module is one folder: its sources are DIR/*.cc and its headers DIR/*.h (not those of
# subfolders, which are modules of their own). The target is the static library backbone_<name>,
# or the program EXECUTABLE. Its headers (DIR/*.h, and the API and GENERATED headers it owns)
# are linked into an include root of its own, build/modules/<name>/, which is the only include
# path it exports. A file therefore sees the headers of its own module and of the modules it
# depends on (PUBLIC dependencies transitively, PRIVATE ones directly), and nothing else: a
# forbidden include fails to compile. The check of tests/architecture/ checks the same rule on
# the text of every file, and also which third-party headers each module may include.
#
# Packages are named once, in backbone_package(), with the link target and the header prefixes
# that belong to them.

set(BACKBONE_MODULE_ROOT ${CMAKE_BINARY_DIR}/modules)
file(REMOVE_RECURSE ${BACKBONE_MODULE_ROOT})  # no stale links of headers that moved
set_property(GLOBAL PROPERTY BACKBONE_MODULES "")
set_property(GLOBAL PROPERTY BACKBONE_PACKAGES "")

# Warnings and sanitizers of backbone's own code (not of generated code).
add_library(backbone_flags INTERFACE)
target_compile_options(backbone_flags INTERFACE -Wall -Wextra -Wpedantic -Werror
                       -Wno-missing-field-initializers)
if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  # GCC 12 warns falsely on std::string concatenation at -O2 and above (GCC bug 105329).
  target_compile_options(backbone_flags INTERFACE -Wno-restrict)
endif()
if(BACKBONE_FUZZ)
  # Coverage for libFuzzer in every module (the fuzz programs link the fuzzer itself), and the
  # sanitizers that turn a silent fault into a crash the fuzzer keeps. Warnings stay warnings:
  # this tree is clang's, the others GCC's.
  target_compile_options(backbone_flags INTERFACE -fsanitize=fuzzer-no-link,address,undefined
                         -fno-sanitize-recover=undefined -Wno-error)
  target_link_options(backbone_flags INTERFACE -fsanitize=address,undefined)
endif()
if(BACKBONE_SANITIZE)
  # Line tables (-g1) are enough for ASan's reports. The sanitizer tree stays at -O0: at -O1 it
  # compiled 2.5 times slower and GCC 12 warned falsely in <regex> (doc/build.md).
  target_compile_options(backbone_flags INTERFACE -fsanitize=address,undefined
                         -fno-omit-frame-pointer -fno-sanitize-recover=all -g1)
  target_link_options(backbone_flags INTERFACE -fsanitize=address,undefined)
endif()

# backbone_package(<name> <link target> <header prefixes...>)
function(backbone_package name target)
  set_property(GLOBAL APPEND PROPERTY BACKBONE_PACKAGES ${name})
  set_property(GLOBAL PROPERTY BACKBONE_PACKAGE_${name}_TARGET ${target})
  set_property(GLOBAL PROPERTY BACKBONE_PACKAGE_${name}_PREFIXES ${ARGN})
endfunction()

function(backbone_package_target out name)
  get_property(known GLOBAL PROPERTY BACKBONE_PACKAGES)
  if(NOT name IN_LIST known)
    message(FATAL_ERROR "backbone_module: unknown package ${name}")
  endif()
  get_property(t GLOBAL PROPERTY BACKBONE_PACKAGE_${name}_TARGET)
  set(${out} ${t} PARENT_SCOPE)
endfunction()

function(backbone_module name)
  cmake_parse_arguments(M "" "DIR;EXECUTABLE"
                        "API;GENERATED;DEPS;PRIVATE_DEPS;PACKAGES;PRIVATE_PACKAGES" ${ARGN})
  set(root ${BACKBONE_MODULE_ROOT}/${name})
  file(GLOB headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${M_DIR}/*.h)
  set(owned)
  foreach(h ${headers})
    get_filename_component(base ${h} NAME)
    file(MAKE_DIRECTORY ${root}/${M_DIR})
    file(CREATE_LINK ${h} ${root}/${M_DIR}/${base} SYMBOLIC)
    list(APPEND owned ${M_DIR}/${base})
  endforeach()
  foreach(h ${M_API})
    file(MAKE_DIRECTORY ${root}/backbone)
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/include/backbone/${h} ${root}/backbone/${h} SYMBOLIC)
    list(APPEND owned backbone/${h})
  endforeach()
  foreach(h ${M_GENERATED})
    file(MAKE_DIRECTORY ${root}/backbone)
    file(CREATE_LINK ${CMAKE_BINARY_DIR}/generated/backbone/${h} ${root}/backbone/${h} SYMBOLIC)
    list(APPEND owned backbone/${h})
  endforeach()
  file(GLOB sources CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/${M_DIR}/*.cc)
  set(target backbone_${name})
  if(M_EXECUTABLE)
    set(target ${M_EXECUTABLE})
    add_executable(${target} ${sources})
    target_include_directories(${target} PRIVATE ${root})
    target_link_libraries(${target} PRIVATE backbone_flags)
    set(pub PRIVATE)
    set(priv PRIVATE)
  elseif(sources)
    add_library(${target} STATIC ${sources})
    target_include_directories(${target} PUBLIC ${root})
    target_link_libraries(${target} PRIVATE backbone_flags)
    set(pub PUBLIC)
    set(priv PRIVATE)
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${root})
    set(pub INTERFACE)
    set(priv INTERFACE)
  endif()
  foreach(d ${M_DEPS})
    target_link_libraries(${target} ${pub} backbone_${d})
  endforeach()
  foreach(d ${M_PRIVATE_DEPS})
    target_link_libraries(${target} ${priv} backbone_${d})
  endforeach()
  foreach(p ${M_PACKAGES})
    backbone_package_target(t ${p})
    target_link_libraries(${target} ${pub} ${t})
  endforeach()
  foreach(p ${M_PRIVATE_PACKAGES})
    backbone_package_target(t ${p})
    target_link_libraries(${target} ${priv} ${t})
  endforeach()

  set_property(GLOBAL APPEND PROPERTY BACKBONE_MODULES ${name})
  set_property(GLOBAL PROPERTY BACKBONE_MODULE_${name}_DIR ${M_DIR})
  set_property(GLOBAL PROPERTY BACKBONE_MODULE_${name}_HEADERS ${owned})
  set_property(GLOBAL PROPERTY BACKBONE_MODULE_${name}_DEPS ${M_DEPS})
  set_property(GLOBAL PROPERTY BACKBONE_MODULE_${name}_PRIVATE_DEPS ${M_PRIVATE_DEPS})
  set_property(GLOBAL PROPERTY BACKBONE_MODULE_${name}_PACKAGES ${M_PACKAGES} ${M_PRIVATE_PACKAGES})
  set_property(GLOBAL PROPERTY BACKBONE_MODULE_${name}_PUBLIC_PACKAGES ${M_PACKAGES})
endfunction()

# The modules whose headers `name` sees: itself, its PUBLIC dependencies transitively, and its
# PRIVATE dependencies with their PUBLIC ones. The same rule as CMake's include propagation.
function(backbone_public_closure out name)
  set(seen ${name})
  set(queue ${name})
  while(queue)
    list(POP_FRONT queue m)
    get_property(deps GLOBAL PROPERTY BACKBONE_MODULE_${m}_DEPS)
    foreach(d ${deps})
      if(NOT d IN_LIST seen)
        list(APPEND seen ${d})
        list(APPEND queue ${d})
      endif()
    endforeach()
  endwhile()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

function(backbone_visible_modules out name)
  backbone_public_closure(seen ${name})
  get_property(priv GLOBAL PROPERTY BACKBONE_MODULE_${name}_PRIVATE_DEPS)
  foreach(p ${priv})
    backbone_public_closure(more ${p})
    list(APPEND seen ${more})
  endforeach()
  list(REMOVE_DUPLICATES seen)
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# The header prefixes of the packages named in `packages`.
function(backbone_package_prefixes out)
  set(prefixes)
  foreach(p ${ARGN})
    get_property(pre GLOBAL PROPERTY BACKBONE_PACKAGE_${p}_PREFIXES)
    list(APPEND prefixes ${pre})
  endforeach()
  set(${out} ${prefixes} PARENT_SCOPE)
endfunction()

# Writes the manifest that tests/architecture/check_includes.cmake reads: for every module its
# folder, the headers it may include and the third-party header prefixes it may include.
function(backbone_write_module_manifest file)
  get_property(modules GLOBAL PROPERTY BACKBONE_MODULES)
  get_property(packages GLOBAL PROPERTY BACKBONE_PACKAGES)
  set(text "# Generated by cmake/BackboneModule.cmake; read by tests/architecture/check_includes.cmake.\n")
  string(APPEND text "set(MODULES ${modules})\n")
  backbone_package_prefixes(all_prefixes ${packages})
  string(APPEND text "set(PACKAGE_PREFIXES ${all_prefixes})\n")
  foreach(m ${modules})
    get_property(dir GLOBAL PROPERTY BACKBONE_MODULE_${m}_DIR)
    get_property(own GLOBAL PROPERTY BACKBONE_MODULE_${m}_HEADERS)
    backbone_visible_modules(visible ${m})
    set(allowed)
    set(pkgs)
    foreach(v ${visible})
      get_property(h GLOBAL PROPERTY BACKBONE_MODULE_${v}_HEADERS)
      list(APPEND allowed ${h})
      if(v STREQUAL m)
        get_property(p GLOBAL PROPERTY BACKBONE_MODULE_${v}_PACKAGES)
      else()
        get_property(p GLOBAL PROPERTY BACKBONE_MODULE_${v}_PUBLIC_PACKAGES)
      endif()
      list(APPEND pkgs ${p})
    endforeach()
    backbone_package_prefixes(prefixes ${pkgs})
    string(APPEND text "set(${m}_DIR ${dir})\nset(${m}_OWN ${own})\n")
    string(APPEND text "set(${m}_VISIBLE ${visible})\nset(${m}_ALLOWED ${allowed})\n")
    string(APPEND text "set(${m}_PREFIXES ${prefixes})\n")
  endforeach()
  file(WRITE ${file} "${text}")
endfunction()
