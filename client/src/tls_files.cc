#include "ringlog/tls_files.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace ringlog {
namespace {

struct BioFree {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyFree {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using Bio = std::unique_ptr<BIO, BioFree>;
using Cert = std::unique_ptr<X509, X509Free>;
using Key = std::unique_ptr<EVP_PKEY, KeyFree>;

Bio memory_bio(const std::string& s) {
  return Bio(BIO_new_mem_buf(s.data(), static_cast<int>(s.size())));
}

// OpenSSL's reason for the last failure, and the queue cleared.
std::string openssl_error() {
  const unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no PEM data";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// The certificates in `pem`, in order.
std::vector<Cert> parse_certificates(const std::string& pem) {
  std::vector<Cert> out;
  Bio bio = memory_bio(pem);
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) out.emplace_back(x);
  ERR_clear_error();  // the end of the input reads as an error
  return out;
}

absl::Time asn1_time(const ASN1_TIME* t) {
  struct tm tm {};
  if (ASN1_TIME_to_tm(t, &tm) != 1) return absl::InfinitePast();
  return absl::FromTM(tm, absl::UTCTimeZone());
}

}  // namespace

absl::StatusOr<std::string> read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    const int e = errno;
    const std::string why = absl::StrCat("cannot read ", path, ": ", std::strerror(e));
    return e == EACCES ? absl::PermissionDeniedError(why) : absl::NotFoundError(why);
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

absl::StatusOr<std::string> read_certificates(const std::string& path) {
  absl::StatusOr<std::string> pem = read_whole_file(path);
  if (!pem.ok()) return pem.status();
  if (parse_certificates(*pem).empty()) {
    return absl::InvalidArgumentError(absl::StrCat(path, " holds no PEM certificate"));
  }
  return pem;
}

absl::StatusOr<KeyPair> read_key_pair(const std::string& cert_path, const std::string& key_path) {
  KeyPair out;
  absl::StatusOr<std::string> cert_pem = read_certificates(cert_path);
  if (!cert_pem.ok()) return cert_pem.status();
  absl::StatusOr<std::string> key_pem = read_whole_file(key_path);
  if (!key_pem.ok()) return key_pem.status();
  std::vector<Cert> chain = parse_certificates(*cert_pem);
  Bio bio = memory_bio(*key_pem);
  Key key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (!key) {
    return absl::InvalidArgumentError(absl::StrCat(
        key_path, " holds no PEM private key (an encrypted key is not supported): ",
        openssl_error()));
  }
  if (X509_check_private_key(chain.front().get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("the key in ", key_path,
                                                   " is not the key of the certificate in ",
                                                   cert_path));
  }
  char subject[512];
  X509_NAME_oneline(X509_get_subject_name(chain.front().get()), subject, sizeof subject);
  out.subject = subject;
  out.not_after = asn1_time(X509_get0_notAfter(chain.front().get()));
  out.cert_pem = *std::move(cert_pem);
  out.key_pem = *std::move(key_pem);
  return out;
}

absl::StatusOr<std::string> read_token_file(const std::string& path) {
  absl::StatusOr<std::string> text = read_whole_file(path);
  if (!text.ok()) return text.status();
  const std::string first = text->substr(0, text->find('\n'));
  const std::string token(absl::StripAsciiWhitespace(first));
  if (token.empty()) return absl::InvalidArgumentError(absl::StrCat(path, " holds no token"));
  return token;
}

}  // namespace ringlog
