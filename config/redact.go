package config

import (
	"bytes"
	"net/url"
	"strings"

	"gopkg.in/yaml.v3"
)

// Redacted returns the configuration as YAML (the shape of the file, every
// key present) with each secret replaced by "<redacted>": secret_key,
// clients[].secret, organizations[].client_secret and the passwords in
// smtp_url, database_url and events.webhook_url, and
// events.webhook_secret. It is what "latchkey config print" shows and
// what the golden tests compare.
func (c *Config) Redacted() ([]byte, error) {
	r := *c
	r.SMTPURL = redactURL(c.SMTPURL)
	r.DatabaseURL = redactURL(c.DatabaseURL)
	r.Events.WebhookURL = redactURL(c.Events.WebhookURL)
	if c.Events.WebhookSecret != "" {
		r.Events.WebhookSecret = redacted
	}
	r.Clients = make([]Client, len(c.Clients))
	for i, cl := range c.Clients {
		if cl.Secret != "" {
			cl.Secret = redacted
		}
		r.Clients[i] = cl
	}
	r.Organizations = make([]Organization, len(c.Organizations))
	for i, o := range c.Organizations {
		if o.ClientSecret != "" {
			o.ClientSecret = redacted
		}
		jit := o.JITEnabled() // show the effective value, not null
		o.JIT = &jit
		r.Organizations[i] = o
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&r); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// redactURL hides the password of a URL, in its user info or in a
// "password" query parameter. Text that does not parse as a URL with a
// scheme is returned as is only if it cannot hold a password.
func redactURL(s string) string {
	if s == "" {
		return s
	}
	u, err := url.Parse(s)
	if err != nil {
		if strings.ContainsAny(s, "@?") {
			return redacted
		}
		return s
	}
	_, hasPassword := u.User.Password()
	q := u.Query()
	if !hasPassword && !q.Has("password") {
		return s
	}
	if q.Has("password") {
		q.Set("password", "REDACTED")
		u.RawQuery = strings.ReplaceAll(q.Encode(), "REDACTED", redacted)
	}
	if !hasPassword {
		return u.String()
	}
	user := u.User.Username()
	u.User = nil
	out := u.String()
	scheme := u.Scheme + "://"
	return scheme + url.User(user).String() + ":" + redacted + "@" + strings.TrimPrefix(out, scheme)
}

// RedactURL hides the password of a URL (a database or SMTP URL) for
// printing.
func RedactURL(s string) string { return redactURL(s) }
