// Package web is the page machinery shared by the sign-in (login) and the
// account pages (login/account): the renderer (embedded html/template
// pages over one layout and shared partials, and the CSS), every cookie
// name and the cookie rules, sealed cookies, the browser handle and CSRF
// tokens derived from it, the error pages with error ids (echo's error
// handler, and one for the OP's /authorize errors), the security headers
// (a page that offers passkeys sets Page.Script: only its CSP allows a
// script, ours, static/passkey.js),
// and the request facts pages and mails show (client address, User-Agent
// in words, dates, the backup code view).
//
// Each page package builds its own Kit over the same keyring, so a CSRF
// token or sealed cookie one makes is good for the other. It holds no
// state beyond configuration and parsed templates, and never touches
// storage except through the one narrow lookup of the browser session.
// It is internal: only packages under login/ use it.
package web
