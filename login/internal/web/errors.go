package web

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/latchkey/latchkey/login/i18n"
	"github.com/latchkey/latchkey/storage"
)

// UserError is an error with a message for the user: a message of the
// catalogue, rendered in the page's language. The cause goes to the log
// only: user text and log text are different values.
type UserError struct {
	Status  int
	Message i18n.Msg
	Cause   error
}

func (e *UserError) Error() string {
	if e.Cause != nil {
		return e.Message.ID + ": " + e.Cause.Error()
	}
	return e.Message.ID
}

func (e *UserError) Unwrap() error { return e.Cause }

// BadRequest is a 400 with a message for the user.
func BadRequest(msg i18n.Msg, cause error) error {
	return &UserError{Status: http.StatusBadRequest, Message: msg, Cause: cause}
}

// Forbidden is a 403 with a message for the user.
func Forbidden(msg i18n.Msg, cause error) error {
	return &UserError{Status: http.StatusForbidden, Message: msg, Cause: cause}
}

// NotFound is a 404 with a message for the user.
func NotFound(msg i18n.Msg) error {
	return &UserError{Status: http.StatusNotFound, Message: msg}
}

// Messages shown on error pages.
var (
	MsgRequestGone  = i18n.M("error.request_gone")
	MsgOtherBrowser = i18n.M("error.other_browser")
	MsgSigninDone   = i18n.M("error.signin_done")
	MsgInternal     = i18n.M("error.internal")
	MsgFormExpired  = i18n.M("error.form_expired")
	MsgNotFound     = i18n.M("error.not_found")
	MsgTooLarge     = i18n.M("error.too_large")
	MsgUnavailable  = i18n.M("error.unavailable")
)

// RetryAfterSeconds is what a client is asked to wait during a database
// outage (the Retry-After of a 503).
const RetryAfterSeconds = "10"

// HandleError is echo's central error handler: every handler returns
// errors and this renders them. 5xx pages carry an error id that is also
// logged, so support can find the cause.
func (k *Kit) HandleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		// The browser went away mid-request: nothing to render, not a fault.
		k.log.Debug("request canceled by the client", "path", c.Path())
		c.Response().WriteHeader(499)
		return
	}
	status := http.StatusInternalServerError
	msg := MsgInternal
	var ue *UserError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ue):
		status, msg = ue.Status, ue.Message
	case errors.As(err, &he):
		status = he.Code
		switch status {
		case http.StatusNotFound:
			msg = MsgNotFound
		case http.StatusMethodNotAllowed:
			msg = i18n.M("error.method")
		case http.StatusRequestEntityTooLarge:
			msg = MsgTooLarge
		default:
			if status < 500 {
				msg = MsgBadText
			}
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status, msg = http.StatusRequestEntityTooLarge, MsgTooLarge
	}
	if errors.Is(err, storage.ErrInvalidText) {
		// Text the database cannot hold reached a write: the client's
		// fault, not ours (RejectInvalidText stops most of it earlier).
		status, msg = http.StatusBadRequest, MsgBadText
	}
	if storage.IsUnavailable(err) {
		// The database is out of reach: a condition that passes, never the
		// user's fault, whatever a handler made of it.
		status, msg = http.StatusServiceUnavailable, MsgUnavailable
		c.Response().Header().Set("Retry-After", RetryAfterSeconds)
	}
	id := ""
	ctx := c.Request().Context()
	switch {
	case status == http.StatusServiceUnavailable:
		// No error id: the page says what happened, and the line may be
		// one of many (the log counts repeats).
		k.log.ErrorContext(ctx, "request failed: database unavailable", "path", c.Path(), "err", err)
	case status >= 500:
		id = newErrorID()
		k.log.ErrorContext(ctx, "request failed", "error_id", id, "path", c.Path(), "err", err)
	case status == http.StatusNotFound:
		// Say which path (never the query, which may carry a code or a
		// token).
		k.log.InfoContext(ctx, "not found", "path", Truncate(c.Request().URL.Path, 200), "err", err)
	default:
		k.log.InfoContext(ctx, "request refused", "status", status, "path", c.Path(), "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if p := c.Request().URL.Path; strings.HasPrefix(p, "/api/") || strings.HasPrefix(p, "/admin/") {
		// The account and admin APIs answer in JSON, errors included.
		code := "invalid_request"
		switch {
		case status == http.StatusServiceUnavailable:
			code = "temporarily_unavailable"
		case status >= 500:
			code = "server_error"
		}
		// Programs read these: in English, whatever the page language.
		desc := k.langs.Bundle().Localizer(i18n.English).Msg(msg)
		_ = c.JSON(status, map[string]string{"error": code, "error_description": desc})
		return
	}
	if rerr := k.Render(c, status, "error", Page{Title: MsgErrorTitle, Data: ErrorData{Message: msg, ErrorID: id,
		RequestID: RequestID(c.Response().Header())}}); rerr != nil {
		k.log.ErrorContext(ctx, "render error page", "err", rerr)
		_ = c.String(status, k.Localizer(c).Msg(msg))
	}
}

// MsgErrorTitle is the error page's title.
var MsgErrorTitle = i18n.M("error.title")

// ErrorData is the error page's data; also used for a plain message page.
type ErrorData struct {
	Message i18n.Msg
	ErrorID string
	// RequestID is the request's id (the X-Request-Id response header the
	// server's outer handler set), shown so support can find the logs.
	RequestID string
}

// RequestIDHeader carries the request id, set on every response by the
// server's outermost handler before any page runs.
const RequestIDHeader = "X-Request-Id"

// RequestID reads the request id from a response's headers ("" if none).
func RequestID(h http.Header) string { return h.Get(RequestIDHeader) }

// ErrorPage renders an error page outside echo (the OP uses it for bad
// /authorize and /end_session requests), with an error id that is logged
// with the message, so a developer or the support desk can find it. The
// message is an id of the catalogue with name/value arguments (the OP
// names them; it does not import this package). The page speaks the
// request's ui_locales (an /authorize request may carry one) or the
// browser's language.
func (k *Kit) ErrorPage(w http.ResponseWriter, r *http.Request, status int, msgID string, args ...string) {
	id := newErrorID()
	// On the request's context (its request id) and with the message's
	// arguments (the detail, e.g. which client or redirect_uri): a
	// client's mistake at INFO, a server fault at ERROR. The database
	// being out of reach (503) is logged, counted, where it is noticed.
	attrs := []any{"status", status, "path", r.URL.Path, "error_id", id, "message", msgID}
	for i := 0; i+1 < len(args); i += 2 {
		attrs = append(attrs, strings.ToLower(args[i]), Truncate(args[i+1], 300))
	}
	if status >= 500 && status != http.StatusServiceUnavailable {
		k.log.ErrorContext(r.Context(), "request failed", attrs...)
	} else {
		k.log.InfoContext(r.Context(), "request refused", attrs...)
	}
	e := echo.New()
	c := e.NewContext(r, w)
	if ui := r.URL.Query().Get("ui_locales"); ui != "" {
		k.SetUILocales(c, i18n.SplitUILocales(ui))
	} else if ui := r.PostForm.Get("ui_locales"); ui != "" {
		k.SetUILocales(c, i18n.SplitUILocales(ui))
	}
	margs := make([]any, len(args))
	for i, a := range args {
		margs[i] = a
	}
	_ = k.SecurityHeaders(func(c echo.Context) error {
		return k.Render(c, status, "error", Page{Title: MsgErrorTitle, Data: ErrorData{Message: i18n.M(msgID, margs...), ErrorID: id, RequestID: RequestID(w.Header())}})
	})(c)
}

// newErrorID is a short random id shown to the user and logged.
func newErrorID() string {
	b := make([]byte, 6)
	_, _ = io.ReadFull(rand.Reader, b)
	return hex.EncodeToString(b)
}
