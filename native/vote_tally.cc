// Vote tally: aggregates ballots for the elections of one PtP domain.
//
// Semantics (kept identical to src/hotpath/vote-tally-ref.ts, which is the executable
// specification; the property test holds the two together):
//  - A ballot is (election u32, voter u16, choice u8, keySeq u64).
//  - voter >= electorate or choice not 0/1: invalid, counted, no other effect (an invalid
//    ballot does not advance the election horizon).
//  - Elections are ordered by their u32 sequence. With a window W, election E is stale
//    once some election E' >= E + W has been seen (W = 1: any newer election makes E
//    stale). Stale ballots are counted and dropped; the state of a stale election is
//    forgotten, which is what bounds memory to W elections.
//  - One ballot per voter per election: later ones are duplicates, counted and ignored
//    whatever their choice.
//  - Decision, reported exactly once: online as soon as yes > threshold; offline as soon
//    as every voter has voted and yes <= threshold.
//
// Batch records are 16 bytes little-endian: u32 election, u16 voter, u8 choice, u8 pad,
// u64 keySeq. Decisions come back packed, 24 bytes each: u32 election, u32 yes, u32 no,
// u8 outcome (1 online, 2 offline), 3 pad bytes, u64 maxKeySeq.
#include "register.h"

#include <napi.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <vector>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "vote_tally.cc reads little-endian records in place; add byte swapping for this target"
#endif

namespace ptpvts {
namespace {

constexpr size_t kBallotSize = 16;
constexpr size_t kDecisionSize = 24;
constexpr uint32_t kMaxElectorate = 65536;
constexpr uint32_t kMaxWindow = 1u << 20;
// Bitset words across all slots; caps the tally at 32 MiB of voter bits.
constexpr uint64_t kMaxBitsetWords = 1ull << 22;

enum Outcome : uint8_t { kUndecided = 0, kOnline = 1, kOffline = 2 };
// Result codes of a single cast, shared with the TS facade.
enum CastCode : uint32_t {
  kAccepted = 0,
  kDuplicate = 1,
  kStale = 2,
  kInvalid = 3,
  kAcceptedDecidedOnline = 4,
  kAcceptedDecidedOffline = 5,
};

struct Slot {
  uint64_t tag = 0;  // election + 1; 0 marks a slot never used
  uint32_t yes = 0;
  uint32_t no = 0;
  uint64_t maxKeySeq = 0;
  uint8_t decided = kUndecided;
  uint32_t election() const { return static_cast<uint32_t>(tag - 1); }
};

struct Counters {
  uint64_t accepted = 0, duplicates = 0, stale = 0, invalid = 0, decided = 0;
};

class Tally {
 public:
  Tally(uint32_t electorate, uint32_t threshold, uint32_t window)
      : n_(electorate), threshold_(threshold), window_(window) {
    uint32_t slots = 1;
    while (slots < window) slots <<= 1;
    mask_ = slots - 1;
    words_ = (electorate + 63) / 64;
    slots_.resize(slots);
    bits_.assign(static_cast<size_t>(slots) * words_, 0);
  }

  uint32_t Cast(uint32_t election, uint32_t voter, uint32_t choice, uint64_t keySeq) {
    return CastImpl(election, voter, choice, keySeq, c_, horizon_, nullptr);
  }

  // The batch loop keeps counters and the horizon in locals: the voter bitset is written
  // through a uint64_t pointer, and members of the same type would otherwise have to be
  // reloaded and stored on every ballot.
  void CastBatch(const uint8_t* p, size_t len, std::vector<uint8_t>& out) {
    Counters c = c_;
    int64_t horizon = horizon_;
    for (size_t off = 0; off < len; off += kBallotSize) {
      uint32_t election;
      uint16_t voter;
      uint64_t keySeq;
      std::memcpy(&election, p + off, 4);
      std::memcpy(&voter, p + off + 4, 2);
      std::memcpy(&keySeq, p + off + 8, 8);
      CastImpl(election, voter, p[off + 6], keySeq, c, horizon, &out);
    }
    c_ = c;
    horizon_ = horizon;
  }

  bool Open(uint32_t election) {
    const int64_t e = election;
    if (e + static_cast<int64_t>(window_) <= horizon_) return false;
    if (e > horizon_) horizon_ = e;
    return true;
  }

  // The live state of `election`, or nullptr when it is unknown or expired.
  const Slot* Find(uint32_t election) const {
    const int64_t e = election;
    if (e + static_cast<int64_t>(window_) <= horizon_) return nullptr;
    const Slot& s = slots_[election & mask_];
    return s.tag == static_cast<uint64_t>(election) + 1 ? &s : nullptr;
  }

  const Counters& counters() const { return c_; }
  int64_t horizon() const { return horizon_; }

 private:
  inline uint32_t CastImpl(uint32_t election, uint32_t voter, uint32_t choice, uint64_t keySeq, Counters& c,
                           int64_t& horizon, std::vector<uint8_t>* out) {
    if (voter >= n_ || choice > 1) {
      ++c.invalid;
      return kInvalid;
    }
    const int64_t e = election;
    if (e + static_cast<int64_t>(window_) <= horizon) {
      ++c.stale;
      return kStale;
    }
    if (e > horizon) horizon = e;
    const uint32_t index = election & mask_;
    Slot& s = slots_[index];
    uint64_t* bits = &bits_[static_cast<size_t>(index) * words_];
    const uint64_t tag = static_cast<uint64_t>(election) + 1;
    if (s.tag != tag) {
      // Anything else living in this slot is outside the window, so it is expired.
      s = Slot{};
      s.tag = tag;
      std::memset(bits, 0, words_ * sizeof(uint64_t));
    }
    const uint64_t bit = 1ull << (voter & 63);
    uint64_t& word = bits[voter >> 6];
    if (word & bit) {
      ++c.duplicates;
      return kDuplicate;
    }
    word |= bit;
    ++c.accepted;
    // Branch-free: choices and key sequences are data-dependent and would mispredict.
    s.yes += choice;
    s.no += choice ^ 1u;
    s.maxKeySeq = keySeq > s.maxKeySeq ? keySeq : s.maxKeySeq;
    if (s.decided != kUndecided || (s.yes <= threshold_ && s.yes + s.no != n_)) return kAccepted;
    s.decided = s.yes > threshold_ ? kOnline : kOffline;
    ++c.decided;
    if (out != nullptr) AppendDecision(*out, s);
    return s.decided == kOnline ? kAcceptedDecidedOnline : kAcceptedDecidedOffline;
  }

  static void AppendDecision(std::vector<uint8_t>& out, const Slot& s) {
    uint8_t rec[kDecisionSize] = {};
    const uint32_t election = s.election();
    std::memcpy(rec + 0, &election, 4);
    std::memcpy(rec + 4, &s.yes, 4);
    std::memcpy(rec + 8, &s.no, 4);
    rec[12] = s.decided;
    std::memcpy(rec + 16, &s.maxKeySeq, 8);
    out.insert(out.end(), rec, rec + kDecisionSize);
  }

  uint32_t n_, threshold_, window_;
  uint32_t mask_ = 0;
  uint32_t words_ = 0;
  int64_t horizon_ = -1;
  std::vector<Slot> slots_;
  std::vector<uint64_t> bits_;
  Counters c_;
};

class VoteTally : public Napi::ObjectWrap<VoteTally> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "VoteTally",
                       {
                           InstanceMethod<&VoteTally::CastBatch>("castBatch"),
                           InstanceMethod<&VoteTally::CastOne>("cast"),
                           InstanceMethod<&VoteTally::OpenElection>("open"),
                           InstanceMethod<&VoteTally::Election>("election"),
                           InstanceMethod<&VoteTally::Stats>("stats"),
                       });
  }

  explicit VoteTally(const Napi::CallbackInfo& info) : Napi::ObjectWrap<VoteTally>(info) {
    Napi::Env env = info.Env();
    const char* usage = "new VoteTally(electorate, threshold, window)";
    if (info.Length() < 3 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber()) {
      throw Napi::TypeError::New(env, std::string(usage) + ": three numbers expected");
    }
    const double n = info[0].As<Napi::Number>().DoubleValue();
    const double t = info[1].As<Napi::Number>().DoubleValue();
    const double w = info[2].As<Napi::Number>().DoubleValue();
    if (!(n >= 1 && n <= kMaxElectorate && n == static_cast<uint32_t>(n))) {
      throw Napi::RangeError::New(env, std::string(usage) + ": electorate must be an integer 1..65536");
    }
    if (!(t >= 0 && t <= 4294967295.0 && t == static_cast<uint32_t>(t))) {
      throw Napi::RangeError::New(env, std::string(usage) + ": threshold must be an integer 0..2^32-1");
    }
    if (!(w >= 1 && w <= kMaxWindow && w == static_cast<uint32_t>(w))) {
      throw Napi::RangeError::New(env, std::string(usage) + ": window must be an integer 1..2^20");
    }
    uint64_t slots = 1;
    while (slots < w) slots <<= 1;
    if (slots * ((static_cast<uint64_t>(n) + 63) / 64) > kMaxBitsetWords) {
      throw Napi::RangeError::New(env, std::string(usage) + ": window x electorate is too large (over 32 MiB of state)");
    }
    tally_ = std::make_unique<Tally>(static_cast<uint32_t>(n), static_cast<uint32_t>(t), static_cast<uint32_t>(w));
  }

 private:
  Napi::Value CastBatch(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsTypedArray() ||
        info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
      throw Napi::TypeError::New(env, "castBatch(ballots): ballots must be a Uint8Array");
    }
    auto u8 = info[0].As<Napi::Uint8Array>();
    const size_t len = u8.ByteLength();
    if (len % kBallotSize != 0) {
      throw Napi::RangeError::New(env, "castBatch(ballots): length must be a multiple of 16 bytes");
    }
    std::vector<uint8_t> decisions;
    tally_->CastBatch(u8.Data(), len, decisions);
    if (decisions.empty()) return env.Null();
    return Napi::Buffer<uint8_t>::Copy(env, decisions.data(), decisions.size());
  }

  Napi::Value CastOne(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 4 || !info[0].IsNumber() || !info[1].IsNumber() || !info[2].IsNumber() || !info[3].IsBigInt()) {
      throw Napi::TypeError::New(env, "cast(election, voter, choice, keySeq): three numbers and a bigint expected");
    }
    bool lossless = false;
    const uint64_t keySeq = info[3].As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) throw Napi::RangeError::New(env, "cast: keySeq must fit in 64 bits unsigned");
    const uint32_t code = tally_->Cast(info[0].As<Napi::Number>().Uint32Value(), info[1].As<Napi::Number>().Uint32Value(),
                                       info[2].As<Napi::Number>().Uint32Value(), keySeq);
    return Napi::Number::New(env, code);
  }

  Napi::Value OpenElection(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "open(election): a number expected");
    return Napi::Boolean::New(env, tally_->Open(info[0].As<Napi::Number>().Uint32Value()));
  }

  // [yes, no, decided, maxKeySeq] or undefined; the facade names the fields.
  Napi::Value Election(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsNumber()) throw Napi::TypeError::New(env, "election(id): a number expected");
    const Slot* s = tally_->Find(info[0].As<Napi::Number>().Uint32Value());
    if (s == nullptr) return env.Undefined();
    Napi::Array a = Napi::Array::New(env, 4);
    a.Set(0u, Napi::Number::New(env, s->yes));
    a.Set(1u, Napi::Number::New(env, s->no));
    a.Set(2u, Napi::Number::New(env, s->decided));
    a.Set(3u, Napi::BigInt::New(env, s->maxKeySeq));
    return a;
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Counters& c = tally_->counters();
    Napi::Object o = Napi::Object::New(env);
    o.Set("accepted", Napi::Number::New(env, static_cast<double>(c.accepted)));
    o.Set("duplicates", Napi::Number::New(env, static_cast<double>(c.duplicates)));
    o.Set("stale", Napi::Number::New(env, static_cast<double>(c.stale)));
    o.Set("invalid", Napi::Number::New(env, static_cast<double>(c.invalid)));
    o.Set("decided", Napi::Number::New(env, static_cast<double>(c.decided)));
    o.Set("horizon", Napi::Number::New(env, static_cast<double>(tally_->horizon())));
    return o;
  }

  std::unique_ptr<Tally> tally_;
};

}  // namespace

void RegisterVoteTally(Napi::Env env, Napi::Object exports) { exports.Set("VoteTally", VoteTally::Define(env)); }

}  // namespace ptpvts
