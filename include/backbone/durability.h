// Durability: how durable a commit is before it returns. Chosen in backbone.toml, used by the
// stores (StoreOptions::durability) and the pipeline.
//
// Thread-safety: a plain enum.
#pragma once

namespace backbone {

enum class Durability {
  kFsync,    // every commit is on stable storage before it returns (the default)
  kRelaxed,  // the OS may hold the last commits; survives a process crash, not a power loss
};

}  // namespace backbone
