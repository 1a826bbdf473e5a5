// Package mail sends Latchkey's mail: the email one-time passcode (SPEC
// §1.3, §1.6), the mandatory notices of security changes (SPEC §3) and
// one-time links.
//
// It owns three things and nothing else:
//
//   - The Mailer interface and its implementations, chosen by URL in New:
//     SMTPMailer ("smtp://" with STARTTLS, "smtps://" with implicit TLS)
//     and LogMailer ("log:", a development sink that writes the mail to
//     the logger so a developer running --demo reads the code on the
//     console).
//   - The composition of a standards-conforming message: RFC 5322 headers
//     (Date, From, To, Subject, Message-ID, MIME-Version, plus RFC 3834
//     Auto-Submitted), RFC 2047 encoded-words for non-ASCII headers, an RFC
//     2046 multipart/alternative body with text/plain and text/html parts
//     in UTF-8 and quoted-printable (RFC 2045), so the message is 7-bit
//     clean and passes through any relay. CR or LF in To or Subject is
//     refused (ErrHeaderInjection) rather than encoded: such a value is a
//     bug or an attack.
//   - The texts: CodeMail, NoticeMail, LinkMail and SignupExistsMail
//     render embedded templates (text/template for the text part,
//     html/template for the HTML part, so user-provided names are
//     escaped) in the mail's Lang, every word from login/i18n's catalogue
//     (the templates' t and tn functions; a message whose id ends in _html
//     only in the HTML part). Times are shown in the mail's TimeZone with
//     the zone's name (UTC, said so, when the user has none), durations
//     in words. Which language and zone is the caller's decision
//     (login/internal/creds: the request's ui_locales, the recipient's
//     language, the browser's); the few text fields a caller gives
//     (Browser, Change) are in that language. The code never appears in a
//     subject, because lock screens show subjects. An operator's theme
//     may replace any template file (ParseTemplates, Site.Templates; the
//     files come from login/theme) and adds its logo (Site.Logo).
//
// It must not touch storage, HTTP or policy: callers decide when to send
// and what the code is; this package only renders and delivers. The
// durable outbox that every mail goes through — written with what it
// belongs to, delivered by a worker on every instance — is its
// subpackage outbox, which knows storage.
//
// # Delivery
//
// SMTPMailer.Send opens one connection per message (mail volume is a few
// messages per sign-in; a pool would add state for no gain). Every network
// step is bounded by Options.DialTimeout or Options.CommandTimeout and by
// the context's deadline, whichever is sooner; cancelling the context
// closes the connection. Temporary failures (network errors, 4xx replies)
// are retried up to Options.Attempts times with exponential back-off
// (200ms, 400ms), but a retry that cannot start before the deadline is not
// made. 5xx replies, TLS verification failures and configuration
// mismatches (no STARTTLS when it is required, no AUTH when credentials
// are set) are permanent. Errors wrap the server's *textproto.Error and,
// when the context ended, ctx.Err().
//
// STARTTLS is used whenever the server offers it, and required when
// credentials are configured and the host is not a loopback address, so
// that a password never crosses a network in clear. AUTH uses PLAIN, or
// LOGIN for servers that offer nothing else. The password never appears in
// errors, log lines or String() (it reads "xxxxx"). A server that offers
// STARTTLS must present a certificate the mailer trusts (system roots, or
// Options.TLSConfig.RootCAs); a failed verification is an error, never a
// silent fallback to clear text.
//
// The log sink writes codes to the log: it is for development (--demo)
// only, and New says so with a warning when it builds one.
//
// The client side uses the standard library's net/smtp rather than
// emersion/go-smtp's client: go-smtp v0.25 offers STARTTLS only as "always
// required" (DialStartTLS/NewClientStartTLS), and the policy above needs
// "when offered". go-smtp serves the other side, in package mailsink and
// in the tests.
//
// # Tests
//
// NewWithOptions takes Options; tests set Options.TLSConfig (RootCAs of a
// self-signed certificate) to exercise STARTTLS and implicit TLS, and
// shorten Backoff. Package mailsink is a real SMTP server for end-to-end
// tests and benchmarks.
package mail
