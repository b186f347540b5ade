{
  "targets": [
    {
      "target_name": "ptpvts",
      "sources": [
        "native/addon.cc",
        "native/crc32c.cc",
        "native/gcm.cc",
        "native/vote_tally.cc",
        "native/key_journal.cc",
        "native/sgio.cc",
        "native/pty.cc",
        "native/writeback.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O2", "-Wall", "-Wextra"],
      "conditions": [
        ["target_arch=='x64'", { "cflags_cc": ["-msse4.2"] }]
      ]
    }
  ]
}
