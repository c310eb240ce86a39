# node-gyp build of the CPU addon: what `npm install` compiles when no prebuild matches, and what prebuildify runs.
# The source list is shared with CMakeLists.txt through native/sources.json.
{
  "variables": {
    "tessera_version": "<!(node -p \"require('./package.json').version\")"
  },
  "targets": [
    {
      "target_name": "tessera",
      "sources": [
        "<!@(node -p \"const s = require('./native/sources.json'); s.core.concat(s.napi).join(' ')\")"
      ],
      "include_dirs": ["native/include"],
      "dependencies": ["<!(node -p \"require('node-addon-api').targets\"):node_addon_api_except"],
      "defines": [
        "NAPI_VERSION=8",
        "NODE_API_NO_EXTERNAL_BUFFERS_ALLOWED",
        "TESSERA_VERSION=\"<(tessera_version)\""
      ],
      "cflags_cc!": ["-std=gnu++17", "-std=gnu++20"],
      "cflags_cc": ["-std=c++20", "-O3", "-fvisibility=hidden", "-Wall", "-Wextra"],
      "ldflags": ["-Wl,--exclude-libs,ALL"],
      "conditions": [
        ["target_arch == 'x64'", {
          "cflags_cc": ["-march=x86-64-v2", "-mtune=generic"]
        }],
        ["OS == 'mac'", {
          "xcode_settings": {
            "CLANG_CXX_LANGUAGE_STANDARD": "c++20",
            "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
            "OTHER_CPLUSPLUSFLAGS": ["-O3"]
          }
        }],
        ["OS == 'win'", {
          "msvs_settings": {
            "VCCLCompilerTool": { "AdditionalOptions": ["/std:c++20", "/O2"] }
          }
        }]
      ]
    }
  ]
}
