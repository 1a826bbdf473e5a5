package login

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// UserError is an error with a message for the user. The cause goes to the
// log only: user text and log text are different values.
type UserError struct {
	Status  int
	Message string
	Cause   error
}

func (e *UserError) Error() string {
	if e.Cause != nil {
		return e.Message + ": " + e.Cause.Error()
	}
	return e.Message
}

func (e *UserError) Unwrap() error { return e.Cause }

func errBadRequest(msg string, cause error) error {
	return &UserError{Status: http.StatusBadRequest, Message: msg, Cause: cause}
}

func errForbidden(msg string, cause error) error {
	return &UserError{Status: http.StatusForbidden, Message: msg, Cause: cause}
}

func errNotFound(msg string) error {
	return &UserError{Status: http.StatusNotFound, Message: msg}
}

// Messages shown on error pages.
const (
	msgRequestGone  = "This sign-in has expired or is unknown. Go back to the application and start again."
	msgOtherBrowser = "This sign-in was started in another browser. Go back to the application and start again here."
	msgSigninDone   = "This sign-in is already complete. Go back to the application."
	msgInternal     = "Something went wrong on our side. Please try again in a moment."
)

// handleError is echo's central error handler: every handler returns
// errors and this renders them. 5xx pages carry an error id that is also
// logged, so support can find the cause.
func (h *Handler) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		// The browser went away mid-request: nothing to render, not a fault.
		h.log.Debug("request canceled by the client", "path", c.Path())
		c.Response().WriteHeader(499)
		return
	}
	status := http.StatusInternalServerError
	msg := msgInternal
	var ue *UserError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ue):
		status, msg = ue.Status, ue.Message
	case errors.As(err, &he):
		status = he.Code
		switch status {
		case http.StatusNotFound:
			msg = "There is nothing here."
		case http.StatusMethodNotAllowed:
			msg = "That is not something this page can do."
		case http.StatusRequestEntityTooLarge:
			msg = "What you sent is too large."
		default:
			if status < 500 {
				msg = "The request could not be understood."
			}
		}
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		status, msg = http.StatusRequestEntityTooLarge, "What you sent is too large."
	}
	id := ""
	if status >= 500 {
		id = newErrorID()
		h.log.Error("request failed", "error_id", id, "path", c.Path(), "err", err)
	} else {
		h.log.Info("request refused", "status", status, "path", c.Path(), "err", err)
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(status)
		return
	}
	if strings.HasPrefix(c.Request().URL.Path, "/api/") {
		// The account API answers in JSON, errors included.
		code := "invalid_request"
		if status >= 500 {
			code = "server_error"
		}
		_ = c.JSON(status, map[string]string{"error": code, "error_description": msg})
		return
	}
	if rerr := h.render(c, status, "error", page{Title: "Something went wrong", Data: errorData{Message: msg, ErrorID: id}}); rerr != nil {
		h.log.Error("render error page", "err", rerr)
		_ = c.String(status, msg)
	}
}

type errorData struct {
	Message string
	ErrorID string
}

// ErrorPage renders an error page outside echo (the OP uses it for bad
// /authorize requests).
func (h *Handler) ErrorPage(w http.ResponseWriter, r *http.Request, status int, message string) {
	e := echo.New()
	c := e.NewContext(r, w)
	h.securityHeaders(func(c echo.Context) error {
		return h.render(c, status, "error", page{Title: "Something went wrong", Data: errorData{Message: message}})
	})(c)
}
