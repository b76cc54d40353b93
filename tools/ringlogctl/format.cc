#include "format.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "ctl.h"

namespace ringlog::ctl {
namespace {

bool printable_text(ByteSpan p) {
  for (std::byte b : p) {
    const auto c = std::to_integer<unsigned char>(b);
    if (c < 0x20 && c != '\t') return false;
    if (c == 0x7f) return false;
  }
  return true;
}

std::string json_escape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + 2);
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20) {
          out += absl::StrFormat("\\u%04x", c);
        } else {
          out += ch;
        }
    }
  }
  return out;
}

}  // namespace

bool parse_format(const std::string& s, Format* f) {
  if (s == "text") *f = Format::kText;
  else if (s == "json") *f = Format::kJson;
  else if (s == "raw") *f = Format::kRaw;
  else return false;
  return true;
}

std::string format_time(uint64_t ns) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E9SZ", absl::FromUnixNanos(static_cast<int64_t>(ns)),
                          absl::UTCTimeZone());
}

bool parse_time(const std::string& s, uint64_t* ns) {
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string::npos) {
    return absl::SimpleAtoi(s, ns);
  }
  absl::Time t;
  std::string err;
  if (!absl::ParseTime(absl::RFC3339_full, s, &t, &err)) return false;
  *ns = static_cast<uint64_t>(absl::ToUnixNanos(t));
  return true;
}

void print_event(std::FILE* out, Format f, uint64_t seq, const EventView& ev) {
  const std::string_view text(reinterpret_cast<const char*>(ev.payload.data()), ev.payload.size());
  switch (f) {
    case Format::kRaw: {
      const ByteSpan rec = ev.record();
      std::fwrite(rec.data(), 1, rec.size(), out);
      return;
    }
    case Format::kText: {
      const bool plain = printable_text(ev.payload);
      std::fprintf(out, "%llu\t%s\ttype=%u\tflags=%u\t%s%s\n", static_cast<unsigned long long>(seq),
                   format_time(ev.timestamp()).c_str(), ev.event_type(), ev.header->flags,
                   plain ? "" : "hex:",
                   plain ? std::string(text).c_str()
                         : absl::BytesToHexString(absl::string_view(text.data(), text.size())).c_str());
      return;
    }
    case Format::kJson: {
      const bool utf8 = printable_text(ev.payload);
      std::fprintf(out,
                   "{\"seq\":%llu,\"timestamp\":%llu,\"time\":\"%s\",\"type\":%u,\"flags\":%u,"
                   "\"%s\":\"%s\"}\n",
                   static_cast<unsigned long long>(seq),
                   static_cast<unsigned long long>(ev.timestamp()),
                   format_time(ev.timestamp()).c_str(), ev.event_type(), ev.header->flags,
                   utf8 ? "payload" : "payload_base64",
                   utf8 ? json_escape(text).c_str()
                        : absl::Base64Escape(absl::string_view(text.data(), text.size())).c_str());
      return;
    }
  }
}

}  // namespace ringlog::ctl
