// Package tlsconfig builds the TLS configuration of strata's servers and clients
// (HTTP and gRPC) from PEM files, and keeps it current when those files change.
//
// # Model
//
// A server is described by a [ServerConfig] (certificate, key and an optional
// client CA) and a client by a [ClientConfig] (CA, optional client certificate,
// server name). Both are plain structs with YAML tags so that endpoint and
// component configuration files can embed them, and both have a Validate method
// that names the offending field or file.
//
// [NewServerConfig] returns one *tls.Config that never changes after it is
// returned: it can be handed to http.Server, tls.NewListener or
// credentials.NewTLS once, at start-up. Rotation happens underneath it: its
// GetConfigForClient hook hands every new handshake an immutable per-handshake
// config built from the material that is current at that moment. A client CA
// file turns on mutual TLS (tls.RequireAndVerifyClientCert); without it no
// client certificate is requested.
//
// [NewClient] returns a [Client]. Its TLSConfig (for http.Transport) sends the
// current client certificate through GetClientCertificate and verifies the
// server itself in VerifyConnection against the current CA pool, because a
// shared config's RootCAs cannot be swapped without a data race. Its
// TransportCredentials (for gRPC) and DialTLSContext do the same per connection
// and also know the dialled host, so they can verify servers addressed by IP.
//
// # Reloading
//
// Material is re-read lazily, on the handshake path, and at most once per
// ReloadInterval (DefaultReloadInterval when zero): the first handshake after
// the interval reads the files (a few kilobytes) and compares a SHA-256 of
// their contents with what is loaded. No goroutine is started and nothing has
// to be closed. Only one handshake checks at a time; concurrent handshakes use
// the material that is current and never wait for the file system.
//
// Certificate and key are loaded together and only published when the key
// matches the certificate and every PEM block parses, so a pair that is caught
// half-written (by a non-atomic overwrite, or between the writes of the two
// files) is rejected and the previous pair keeps serving until a consistent
// pair is on disk. A rejected reload is counted in
// strata_tls_reloads_total{result="failure"} and logged once per distinct bad
// content. The key pair and the CA of one configuration reload independently,
// so a broken CA file does not hold back a certificate rotation.
//
// Material is swapped with an atomic pointer; established connections keep the
// certificates they negotiated and are never interrupted by a reload.
package tlsconfig
