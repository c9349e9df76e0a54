package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/valyala/fasthttp"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/internal/logging"
)

// Detail is one problem with one field.
type Detail struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is an error with its HTTP answer. Handlers return errors; only
// errorHandler writes error bodies.
type Error struct {
	Status  int      `json:"statusCode"`
	Code    string   `json:"code"`
	Message string   `json:"message"`
	Details []Detail `json:"details,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

func validationError(details ...Detail) *Error {
	return &Error{Status: http.StatusBadRequest, Code: "VALIDATION_ERROR", Message: "Request validation failed", Details: details}
}

// resourceError carries what a handler knows about a store or runtime
// error (which resource the path names, which body field references a
// parent) to the one place that maps errors.
type resourceError struct {
	err      error
	resource string // ORGANIZATION, FACTORY or GATEWAY
	refField string // body field naming the parent, for INVALID_REFERENCE
}

func (e *resourceError) Error() string { return e.err.Error() }
func (e *resourceError) Unwrap() error { return e.err }

func scoped(err error, resource, refField string) error {
	if err == nil {
		return nil
	}
	return &resourceError{err: err, resource: resource, refField: refField}
}

// toError maps any error to its HTTP answer. Unexpected errors become a
// 500 that says nothing about the cause.
func toError(err error) (*Error, bool) {
	var apiErr *Error
	if errors.As(err, &apiErr) {
		return apiErr, true
	}
	var re *resourceError
	resource := "GATEWAY"
	if errors.As(err, &re) {
		resource = re.resource
	}
	switch {
	case errors.Is(err, gatewayd.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Code: resource + "_NOT_FOUND", Message: notFoundMessage(resource)}, true
	case errors.Is(err, gatewayd.ErrConflict):
		return &Error{Status: http.StatusConflict, Code: "GATEWAY_ID_CONFLICT",
			Message: "Another gateway already uses this gateway_id",
			Details: []Detail{{Field: "gateway_id", Message: "is already used by another gateway"}}}, true
	case errors.Is(err, gatewayd.ErrInvalidReference):
		field := "id"
		if re != nil && re.refField != "" {
			field = re.refField
		}
		why := "does not exist or is deleted"
		if field == "equipment_id" {
			why = "does not exist, is deleted, or belongs to another factory than the sensor's" // API.md §7
		}
		return &Error{Status: http.StatusUnprocessableEntity, Code: "INVALID_REFERENCE",
			Message: "The referenced resource does not exist",
			Details: []Detail{{Field: field, Message: why}}}, true
	case errors.Is(err, gatewayd.ErrInvalidInput):
		return validationError(Detail{Field: "body", Message: "contains a value the database cannot store"}), true
	case errors.Is(err, gatewayd.ErrNotRunning):
		return &Error{Status: http.StatusConflict, Code: "GATEWAY_NOT_CONNECTED",
			Message: "The gateway has no running connection actor (FAILED); connect it first"}, true
	case errors.Is(err, gatewayd.ErrNotConnected):
		return &Error{Status: http.StatusConflict, Code: "GATEWAY_NOT_CONNECTED",
			Message: "The gateway has no authenticated connection"}, true
	case errors.Is(err, gatewayd.ErrGatewayTimeout):
		return &Error{Status: http.StatusGatewayTimeout, Code: "GATEWAY_TIMEOUT",
			Message: "The gateway did not answer in time"}, true
	case errors.Is(err, gatewayd.ErrQueueFull):
		return &Error{Status: http.StatusTooManyRequests, Code: "READING_QUEUE_FULL",
			Message: "The gateway already has READING_QUEUE_LIMIT readings waiting"}, true
	case errors.Is(err, gatewayd.ErrGatewayError):
		return &Error{Status: http.StatusBadGateway, Code: "GATEWAY_ERROR",
			Message: "The gateway answered with an error"}, true
	case errors.Is(err, gatewayd.ErrUnavailable), errors.Is(err, gatewayd.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "Service temporarily unavailable"}, true
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case http.StatusNotFound:
			return &Error{Status: fe.Code, Code: "NOT_FOUND", Message: "Route not found"}, true
		case http.StatusMethodNotAllowed:
			return errMethodNotAllowed, true
		case http.StatusRequestEntityTooLarge:
			return errPayloadTooLarge, true
		case http.StatusUnsupportedMediaType:
			return &Error{Status: fe.Code, Code: "UNSUPPORTED_MEDIA_TYPE", Message: "Request body must be application/json"}, true
		case http.StatusBadRequest:
			return validationError(Detail{Field: "request", Message: "malformed request"}), true
		case http.StatusServiceUnavailable:
			return &Error{Status: http.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "Service temporarily unavailable"}, true
		case http.StatusRequestTimeout:
			return errRequestTimeout, true
		case http.StatusRequestHeaderFieldsTooLarge:
			return errHeadersTooLarge, true
		}
		if fe.Code >= 400 && fe.Code < 500 {
			// A client error the contract does not list keeps its status.
			return &Error{Status: fe.Code, Code: "BAD_REQUEST", Message: http.StatusText(fe.Code)}, true
		}
	}
	return &Error{Status: http.StatusInternalServerError, Code: "INTERNAL_ERROR", Message: "Internal server error"}, false
}

// Answers that do not depend on the request, shared by the chain and the
// edge (edge.go), which refuses requests before routing.
var (
	errMethodNotAllowed = &Error{Status: http.StatusMethodNotAllowed, Code: "METHOD_NOT_ALLOWED", Message: "Method not allowed on this route"}
	errPayloadTooLarge  = &Error{Status: http.StatusRequestEntityTooLarge, Code: "PAYLOAD_TOO_LARGE", Message: "Request body exceeds 1 MiB"}
	errHeadersTooLarge  = &Error{Status: http.StatusRequestHeaderFieldsTooLarge, Code: "REQUEST_HEADERS_TOO_LARGE",
		Message: "Request line or headers exceed 16 KiB"}
	errRequestTimeout = &Error{Status: http.StatusRequestTimeout, Code: "REQUEST_TIMEOUT", Message: "The request was not received in time"}
	errHTTPVersion    = &Error{Status: http.StatusHTTPVersionNotSupported, Code: "HTTP_VERSION_NOT_SUPPORTED",
		Message: "Only HTTP/1.1 and HTTP/1.0 are served"}
	errAuthorization = validationError(Detail{Field: "Authorization", Message: "must be given once"})
	errHost          = validationError(Detail{Field: "Host", Message: "an HTTP/1.1 request must carry one Host header, and no request more than one"})
	errFraming       = validationError(Detail{Field: "request",
		Message: "must not carry both Content-Length and Transfer-Encoding, nor two different Content-Length values"})
	errMalformed = validationError(Detail{Field: "request", Message: "malformed request"})
)

// readError maps an error fasthttp met while reading a request, before
// any handler ran. headerRead says whether the request's header was read.
// nil means that nothing of a request arrived (a connection opened and
// then left idle or reset): there is nobody to answer.
func readError(err error, headerRead bool) *Error {
	var small *fasthttp.ErrSmallBuffer
	var netErr net.Error
	if _, bare := err.(*net.OpError); bare && !headerRead {
		// fasthttp hands over the socket's own error, unwrapped, only
		// when not a byte of the request came (ErrNothingRead); with a
		// partial header it wraps it.
		return nil
	}
	switch {
	case errors.As(err, &small):
		return errHeadersTooLarge
	case errors.Is(err, fasthttp.ErrBodyTooLarge):
		return errPayloadTooLarge
	case errors.As(err, &netErr) && netErr.Timeout(), errors.Is(err, fasthttp.ErrTimeout):
		return errRequestTimeout
	}
	return errMalformed
}

// notFoundMessage is the message of RESOURCE_NOT_FOUND.
func notFoundMessage(resource string) string {
	if name, ok := resourceNames[resource]; ok {
		return name + " not found"
	}
	return "Not found"
}

var resourceNames = map[string]string{
	resOrganization: "Organization",
	resFactory:      "Factory",
	resGateway:      "Gateway",
	resEquipment:    "Equipment",
	resSensor:       "Sensor",
	resReading:      "Reading",
	resToken:        "Token",
}

// errorHandler writes every error in the one shape; causes of 500s are
// logged with the request id and never sent. allow gives a 405's Allow
// header for the request's path.
func errorHandler(log zerolog.Logger, allow func(path string) string) fiber.ErrorHandler {
	var outage logging.Pacer
	return func(c *fiber.Ctx, err error) error {
		apiErr, known := toError(err)
		switch {
		case !known:
			log.Error().Err(err).Str("request_id", requestID(c)).Str("method", c.Method()).Str("path", c.Path()).
				Msg("unexpected error")
		case errors.Is(err, gatewayd.ErrUnavailable) && c.UserContext().Err() == nil:
			// The 503 says nothing of its cause; the log does (a read-only
			// database, refused logins, no free connection …), once per
			// outageLogEvery with how many went unlogged since: the access
			// log already has every request.
			if ok, unlogged := outage.Allow(time.Now(), outageLogEvery); ok {
				log.Warn().Err(err).Int("unlogged_since", unlogged).Str("method", c.Method()).Str("path", c.Path()).
					Msg("the database could not serve a request; answered 503")
			}
		}
		if apiErr.Status == http.StatusMethodNotAllowed {
			// Fiber's list may name methods of another route (see allowTable).
			c.Response().Header.Del(fiber.HeaderAllow)
			if methods := allow(c.Path()); methods != "" {
				c.Set(fiber.HeaderAllow, methods)
			}
		}
		return c.Status(apiErr.Status).JSON(fiber.Map{"error": apiErr})
	}
}

// outageLogEvery paces the log line about requests the database could not
// serve.
const outageLogEvery = 10 * time.Second
