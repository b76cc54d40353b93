// An epoch history (ringlog/epochs.h) to and from its wire form, the
// repeated v1::EpochEntry of FollowHello and Directive: one conversion for
// the primary and the replica.
#pragma once

#include <vector>

#include "ringlog/epochs.h"
#include "ringlog/v1/ringlog.pb.h"

namespace ringlog {

inline std::vector<EpochEntry> epochs_from_wire(
    const google::protobuf::RepeatedPtrField<v1::EpochEntry>& wire) {
  std::vector<EpochEntry> out;
  out.reserve(wire.size());
  for (const v1::EpochEntry& e : wire) out.push_back({e.epoch(), e.start_offset()});
  return out;
}

inline void epochs_to_wire(const std::vector<EpochEntry>& entries,
                           google::protobuf::RepeatedPtrField<v1::EpochEntry>* wire) {
  for (const EpochEntry& e : entries) {
    v1::EpochEntry* w = wire->Add();
    w->set_epoch(e.epoch);
    w->set_start_offset(e.start_offset);
  }
}

}  // namespace ringlog
