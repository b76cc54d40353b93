#include "format.h"

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "ctl.h"

namespace ringlog::ctl {
namespace {

// Whether `p` reads as text: valid UTF-8 without control characters (tabs
// aside), so that printing it as it is shows what it holds.
bool printable_text(ByteSpan p) {
  const size_t n = p.size();
  for (size_t i = 0; i < n;) {
    const auto c = std::to_integer<unsigned char>(p[i]);
    if (c < 0x80) {
      if ((c < 0x20 && c != '\t') || c == 0x7f) return false;
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    uint32_t min;
    if ((c & 0xe0) == 0xc0) {
      len = 2, cp = c & 0x1f, min = 0x80;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3, cp = c & 0x0f, min = 0x800;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4, cp = c & 0x07, min = 0x10000;
    } else {
      return false;
    }
    if (n - i < len) return false;
    for (size_t k = 1; k < len; ++k) {
      const auto b = std::to_integer<unsigned char>(p[i + k]);
      if ((b & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (b & 0x3f);
    }
    // Overlong forms, surrogates, code points beyond Unicode, C1 controls.
    if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || cp < 0xa0) return false;
    i += len;
  }
  return true;
}

}  // namespace

std::string json_string(absl::string_view s) {
  std::string out = "\"";
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
  out += '"';
  return out;
}

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

void print_event(std::FILE* out, Format f, uint64_t seq, const EventView& ev,
                 const SeqRange* skipped) {
  const absl::string_view text(reinterpret_cast<const char*>(ev.payload.data()), ev.payload.size());
  switch (f) {
    case Format::kRaw: {
      const ByteSpan rec = ev.record();
      std::fwrite(rec.data(), 1, rec.size(), out);
      return;
    }
    case Format::kText: {
      if (skipped != nullptr && skipped->first == skipped->last) {
        std::fprintf(out, "# seq %llu skipped: a control record, not an event\n",
                     static_cast<unsigned long long>(skipped->first));
      } else if (skipped != nullptr) {
        std::fprintf(out, "# seqs %llu..%llu skipped: control records, not events\n",
                     static_cast<unsigned long long>(skipped->first),
                     static_cast<unsigned long long>(skipped->last));
      }
      const bool plain = printable_text(ev.payload);
      std::fprintf(out, "%llu\t%s\ttype=%u\tflags=%u\t%s%s\n", static_cast<unsigned long long>(seq),
                   format_time(ev.timestamp()).c_str(), ev.event_type(), ev.header->flags,
                   plain ? "" : "hex:",
                   plain ? std::string(text).c_str()
                         : absl::BytesToHexString(absl::string_view(text.data(), text.size())).c_str());
      return;
    }
    case Format::kJson: {
      std::string line = absl::StrFormat(
          "{\"seq\":\"%d\",\"timestamp\":\"%d\",\"time\":\"%s\",\"type\":%d,\"flags\":%d,"
          "\"payload\":\"%s\"",
          seq, ev.timestamp(), format_time(ev.timestamp()), ev.event_type(), ev.header->flags,
          absl::Base64Escape(absl::string_view(text.data(), text.size())));
      if (printable_text(ev.payload)) absl::StrAppend(&line, ",\"text\":", json_string(text));
      if (skipped != nullptr) {
        line += ",\"skippedSeqs\":[";
        for (uint64_t s = skipped->first; s <= skipped->last; ++s) {
          absl::StrAppend(&line, s == skipped->first ? "" : ",", "\"", s, "\"");
        }
        line += "]";
      }
      line += "}\n";
      std::fwrite(line.data(), 1, line.size(), out);
      return;
    }
  }
}

}  // namespace ringlog::ctl
