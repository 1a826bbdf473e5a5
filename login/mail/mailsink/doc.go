// Package mailsink is a real SMTP server that keeps every message it
// receives in memory, for end-to-end tests and for the benchmark tool that
// reads sign-in codes under load.
//
// It is built on github.com/emersion/go-smtp. It accepts any sender and
// recipient, and AUTH PLAIN with any credentials over plain text
// (AllowInsecureAuth), so a mailer configured with credentials for
// 127.0.0.1 can point at it unchanged. It parses each message's MIME
// structure (multipart/alternative and nested multiparts, quoted-printable
// and base64, RFC 2047 subjects) into Received.Text and Received.HTML.
//
// It is safe for concurrent use and cheap per message: delivery takes one
// mutex for a few map and ring-buffer operations, and Wait is driven by
// channels, never by sleeping. Memory is bounded: Messages keeps the last
// 10,000 messages (a ring buffer), and Last/Count/Wait remember the
// 100,000 most recently mailed recipients (an LRU); see Options.
//
// "Unread" (for Wait) means: not yet returned by Wait or Last for that
// recipient. A test that triggers a mail and then calls Wait gets that
// mail whether it arrived before or after the call.
//
// This is non-test code on purpose (the benchmark tool imports it), but
// it must never be wired into the production server.
package mailsink
