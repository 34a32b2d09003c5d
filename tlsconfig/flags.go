package tlsconfig

import "github.com/alecthomas/kingpin/v2"

// RegisterServerFlags registers --<prefix>.tls-cert, --<prefix>.tls-key and
// --<prefix>.tls-client-ca on cmd and returns the config they fill in when the
// command line is parsed. An empty prefix registers --tls-cert and so on.
func RegisterServerFlags(cmd *kingpin.CmdClause, prefix string) *ServerConfig {
	c := &ServerConfig{}
	cmd.Flag(flagName(prefix, "tls-cert"), "TLS certificate file (PEM, leaf first) the server presents; enables TLS. Reloaded when it changes.").
		PlaceHolder("<file>").StringVar(&c.CertFile)
	cmd.Flag(flagName(prefix, "tls-key"), "TLS private key file (PEM) for the certificate. Reloaded when it changes.").
		PlaceHolder("<file>").StringVar(&c.KeyFile)
	cmd.Flag(flagName(prefix, "tls-client-ca"), "CA file (PEM) client certificates must chain to; enables mutual TLS. Reloaded when it changes.").
		PlaceHolder("<file>").StringVar(&c.ClientCAFile)
	return c
}

// RegisterClientFlags registers --<prefix>.tls-ca, --<prefix>.tls-cert,
// --<prefix>.tls-key, --<prefix>.tls-server-name and
// --<prefix>.tls-insecure-skip-verify on cmd and returns the config they fill
// in when the command line is parsed.
func RegisterClientFlags(cmd *kingpin.CmdClause, prefix string) *ClientConfig {
	c := &ClientConfig{}
	cmd.Flag(flagName(prefix, "tls-ca"), "CA file (PEM) the server certificate must chain to; the system roots when empty. Reloaded when it changes.").
		PlaceHolder("<file>").StringVar(&c.CAFile)
	cmd.Flag(flagName(prefix, "tls-cert"), "Client certificate file (PEM) for mutual TLS. Reloaded when it changes.").
		PlaceHolder("<file>").StringVar(&c.CertFile)
	cmd.Flag(flagName(prefix, "tls-key"), "Client private key file (PEM) for --"+flagName(prefix, "tls-cert")+".").
		PlaceHolder("<file>").StringVar(&c.KeyFile)
	cmd.Flag(flagName(prefix, "tls-server-name"), "Name the server certificate must be valid for, and the SNI sent; the dialled host when empty.").
		PlaceHolder("<name>").StringVar(&c.ServerName)
	cmd.Flag(flagName(prefix, "tls-insecure-skip-verify"), "Do not verify the server certificate. For testing only.").
		BoolVar(&c.InsecureSkipVerify)
	return c
}

func flagName(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}
