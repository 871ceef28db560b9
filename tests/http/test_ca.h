// Throwaway certificate authorities for TLS tests, made with the openssl command: a CA, and
// server certificates it signs for 127.0.0.1 and localhost (P-256 keys, valid two days).
#pragma once

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace backbone::testing {

// Files of one certificate: <dir>/<name>.pem and <dir>/<name>.key.
struct CertFiles {
  std::string cert, key;
};

inline bool run_openssl(const std::string& args) {
  return std::system(("openssl " + args + " > /dev/null 2>&1").c_str()) == 0;
}

// A self-signed CA named `name` in `dir`.
inline CertFiles make_test_ca(const std::string& dir, const std::string& name) {
  CertFiles ca{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  if (!run_openssl("req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '" +
                   ca.key + "' -out '" + ca.cert + "' -days 2 -subj '/CN=backbone test " + name +
                   "'")) {
    return {};
  }
  return ca;
}

// A server certificate for 127.0.0.1 and localhost, signed by `ca`, as `name` in `dir`.
inline CertFiles make_server_cert(const std::string& dir, const CertFiles& ca,
                                  const std::string& name) {
  CertFiles out{dir + "/" + name + ".pem", dir + "/" + name + ".key"};
  const std::string csr = dir + "/" + name + ".csr", ext = dir + "/" + name + ".ext";
  std::ofstream(ext) << "subjectAltName=DNS:localhost,IP:127.0.0.1\n";
  if (!run_openssl("req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout '" +
                   out.key + "' -out '" + csr + "' -subj '/CN=localhost'") ||
      !run_openssl("x509 -req -in '" + csr + "' -CA '" + ca.cert + "' -CAkey '" + ca.key +
                   "' -CAcreateserial -out '" + out.cert + "' -days 2 -extfile '" + ext + "'")) {
    return {};
  }
  return out;
}

// Two CAs and a server certificate signed by each, in `dir`, and the live pair that a server is
// given (`live`: a copy of the first's, replaced by put()), as a renewal test needs.
struct RenewalCerts {
  CertFiles ca1, ca2, first, second, live;
  bool made() const { return !second.cert.empty(); }
  // Copies `from` over the live pair.
  void put(const CertFiles& from) const {
    const auto over = std::filesystem::copy_options::overwrite_existing;
    std::filesystem::copy_file(from.cert, live.cert, over);
    std::filesystem::copy_file(from.key, live.key, over);
  }
};

inline RenewalCerts make_renewal_certs(const std::string& dir) {
  RenewalCerts r;
  r.ca1 = make_test_ca(dir, "ca1");
  r.ca2 = make_test_ca(dir, "ca2");
  r.first = make_server_cert(dir, r.ca1, "first");
  r.second = make_server_cert(dir, r.ca2, "second");
  r.live = {dir + "/live.pem", dir + "/live.key"};
  if (r.made()) r.put(r.first);
  return r;
}

}  // namespace backbone::testing
