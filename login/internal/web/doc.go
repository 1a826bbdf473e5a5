// Package web is the page machinery shared by the sign-in (login) and the
// account pages (login/account): the renderer (embedded html/template
// pages over one layout and shared partials, and the CSS; any file
// replaced by the operator's theme (login/theme: Config.Theme, its logo
// and stylesheet filled into every Page, a product's logo origin added
// to one page's CSP through Page.Images); each page parsed once per language, its t/tn/msg functions speaking that
// language, languages.go), the choice of a request's language (the
// handlers say the sign-in's ui_locales and, once known, the account's
// language; then the browser's, then the default: login/i18n.Chooser), every cookie
// name and the cookie rules ("__Host-" names on an https issuer, the
// legacy names read for one release), sealed cookies, the browser handle
// (sealed by the server, rotated at privilege changes, with the cookies
// bound to it) and CSRF tokens derived from it, the error pages with error
// ids (echo's error handler, and one for the OP's /authorize errors), the
// security headers (a page that offers passkeys sets Page.Script: only its
// CSP allows a script, ours, static/passkey.js), the pages' boundary check on text (RejectInvalidText:
// no NUL or invalid UTF-8 reaches a handler), and the request facts pages
// and mails show (client address, User-Agent as clean text cut between
// characters and in words, dates, the backup code view).
//
// When the handle rotates is the callers' decision (login: each verified
// step of a sign-in and its completion, sign-out; login/account: every
// security change and reconfirmation); what moves with it is this
// package's (RotateBrowser, MoveBrowser, ResetBrowser in cookies.go).
//
// Each page package builds its own Kit over the same keyring, so a CSRF
// token or sealed cookie one makes is good for the other. It holds no
// state beyond configuration and parsed templates, and never touches
// storage except through the one narrow lookup of the browser session.
// It is internal: only packages under login/ use it.
package web
