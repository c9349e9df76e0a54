package api

// The API's description: every operation, every schema, every error. The
// OpenAPI document (GET /api/openapi.json, committed as api/openapi.json)
// and the docs page (GET /api/docs) are both made from it; the machinery
// is package api/openapi (oa).
//
// Adding a route:
//
//  1. Register it in app.go as usual.
//  2. Add one entry to apiSpec's Operations below, in its tag's group:
//     oa.Get/Post/Put/Delete(path with {id}, operationId, summary), then
//     .In(tag), .Query(…) for query parameters, .Takes("XCreate") for a
//     JSON body, .OK/.Created/.Accepted(schema) or .NoContent(), .Sends(…)
//     for the headers of its success answer (Location), .OrAs(…) for
//     another media type of it, and .Fails(…) for the errors particular
//     to it (an error's headers go on its e… variable with .With). Its
//     access rule, and whether a GET also answers HEAD, are read from
//     routes.go. Validation (400), 408, 413, 415, 431, 500, 503 and 505
//     are added by commonErrors from what the operation is; .No503()
//     for one that never touches the database (a starting process's 503
//     is listed on it all the same).
//  3. A new response struct in render.go: one oa.Record line in
//     Components (fields are read from its json tags; override a field to
//     give it an enum or a description). A new request body: an oa.Input
//     with its fields and the limits bind.go enforces. A new error code:
//     an e… variable below, made by errFrom from the error the handler
//     returns, so status, code and message are what toError sends.
//  4. `go generate ./api` rewrites api/openapi.json; `make lint` runs
//     Redocly on it. The tests fail while the routes and the spec differ,
//     while the committed file is stale, or when a documented body field,
//     query parameter or limit is not what the code enforces.

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"

	"github.com/gofiber/fiber/v2"

	"github.com/ctcgw/gatewayd"
	oa "github.com/ctcgw/gatewayd/api/openapi"
)

// errFrom documents the answer toError gives err.
func errFrom(err error, when string) oa.ErrorDoc {
	e, _ := toError(err)
	return oa.ErrorDoc{Name: errorName(e.Code), Status: e.Status, Code: e.Code, Message: e.Message, When: when,
		Body: fiber.Map{"error": e}}
}

// errorName is a code in Pascal case: GATEWAY_NOT_FOUND → GatewayNotFound.
func errorName(code string) string {
	out := make([]byte, 0, len(code))
	up := true
	for i := range len(code) {
		switch c := code[i]; {
		case c == '_':
			up = true
		case up && c >= 'a' && c <= 'z':
			out, up = append(out, c-'a'+'A'), false
		case !up && c >= 'A' && c <= 'Z':
			out = append(out, c-'A'+'a')
		default:
			out, up = append(out, c), false
		}
	}
	return string(out)
}

// Headers of answers, besides the X-Request-Id and the security headers
// every answer carries.
var (
	hWWWAuthenticate = oa.RespHeader{Name: "WWW-Authenticate", Always: true, Schema: oa.Const(`Bearer realm="gatewayd"`),
		Description: "the credentials the API takes: a bearer token"}
	hAllow = oa.RespHeader{Name: "Allow", Schema: oa.String(),
		Description: "the methods the route takes, such as `GET, HEAD, PUT, DELETE`; absent when the path is no route"}
	hRetryAfter = oa.RespHeader{Name: "Retry-After", Always: true, Schema: oa.Integer().AtLeast(0),
		Description: "`1`, the seconds to wait before asking again"}
)

// hLocation is the Location of a 201 (the resource it created) or a 202
// (the resource to follow), at path.
func hLocation(path string) oa.RespHeader {
	return oa.RespHeader{Name: "Location", Always: true, Schema: oa.String().Format("uri-reference"),
		Description: "where the resource is: `" + path + "`"}
}

// Errors.
var (
	eValidation = errFrom(validationError(Detail{Field: "name", Message: "must be between 1 and 255 characters"}),
		"malformed JSON, a wrong type, a value out of range, an unknown or repeated field or query parameter, a non-UUID path id; `details` lists every problem, one entry per field")
	eRouteNotFound        = errFrom(fiber.ErrNotFound, "no such route")
	eMethodNotAllowed     = errFrom(fiber.ErrMethodNotAllowed, "the route exists, the method does not").With(hAllow)
	ePayloadTooLarge      = errFrom(fiber.ErrRequestEntityTooLarge, "the body is over 1 MiB (1,048,576 bytes), chunked bodies too; on any route, before routing")
	eUnsupportedMediaType = errFrom(fiber.ErrUnsupportedMediaType, "a body that is not `Content-Type: application/json` (a UTF-8 charset parameter is fine), or one sent with a `Content-Encoding`; on any route, those that take no body included, before routing; it is never parsed")
	eHeadersTooLarge      = errFrom(fiber.ErrRequestHeaderFieldsTooLarge, "the request line or headers exceed 16 KiB; any route")
	eRequestTimeout       = errFrom(errRequestTimeout, "the request (line, headers and body) did not arrive whole within 10 s of its first byte, e.g. a `Content-Length` larger than the body sent; any route; the connection is closed")
	eHTTPVersion          = errFrom(errHTTPVersion, "the request line names an HTTP version other than 1.1 and 1.0 (the HTTP/2 preface included); any route; the connection is closed")
	eInternal             = errFrom(errors.New("unexpected"), "anything unexpected; the cause is logged with the request id, never sent")
	eUnavailable          = errFrom(gatewayd.ErrUnavailable, "the database cannot serve the request (unreachable, refusing connections, or no answer within 5 s), or the runtime did not answer in time")
	eStillLoading         = errFrom(&Error{Status: fiber.StatusServiceUnavailable, Code: "SERVICE_UNAVAILABLE", Message: "Gateways are still loading"},
		"the runtime has not finished loading the gateways").Named("RuntimeLoading")
	eStarting = errFrom(startingError("waiting for the database"),
		"the process is starting (waiting for PostgreSQL or for another instance to stop, migrating, loading the gateways); each answer closes its connection").
		Named("Starting").With(hRetryAfter)
	eTooManyGuesses = errFrom(errTooManyGuesses, "the token is not one the database confirmed, and this address already had 30 such tokens looked up (10 a second after that); a token that works is never refused for it").
			Named("TooManyGuesses").With(hRetryAfter)
	eMalformed = errFrom(errHost, "refused before routing, on any route: a malformed request line or header, an HTTP/1.1 request without `Host` or any with two, two `Authorization` headers, or an ambiguous body length (`Content-Length` with `Transfer-Encoding`, two different `Content-Length`s); `details` names the part (`request`, `Host`, `Authorization`)").
			Named("MalformedRequest")
	eTooManyConnections = errFrom(errTooManyConnections, "this client (an IPv4 address, an IPv6 /64) already holds `API_MAX_CONNECTIONS_PER_CLIENT` connections; on any route, before the request is read; the connection is closed").
				Named("TooManyConnections")
	eServerFull = errFrom(errServerFull, "`API_MAX_CONNECTIONS` connections are open (event streams apart); on any route, before the request is read; the connection is closed").
			Named("ServerFull").With(hRetryAfter)
	eTooManyStreams = errFrom(errTooManyStreams, "event streams and other connections together reach `API_MAX_CONNECTIONS`").Named("TooManyStreams")
	eAnswersBusy    = errFrom(errAnswersBusy, "answers not yet written hold their budget: for waveforms and spectra 16 MiB all clients together, or 4 MiB this client (an IPv4 address, an IPv6 /64), or four are being made (two of them this client's) and this one waited 5 s for its turn; for other answers of 64 KiB or more 64 MiB all clients together, or 16 MiB this client; or this client has 32 lists or records by id being made (one if such answers of its were 64 KiB or more in the last minute) and this one waited 5 s for its turn").
			Named("AnswersBusy").With(hRetryAfter)

	eOrganizationNotFound = errFrom(scoped(gatewayd.ErrNotFound, resOrganization, ""), "the organization does not exist or is deleted")
	eFactoryNotFound      = errFrom(scoped(gatewayd.ErrNotFound, resFactory, ""), "the factory does not exist or is deleted")
	eGatewayNotFound      = errFrom(scoped(gatewayd.ErrNotFound, resGateway, ""), "the gateway does not exist or is deleted")
	eSensorNotFound       = errFrom(scoped(gatewayd.ErrNotFound, resSensor, ""), "the sensor does not exist or is deleted")
	eEquipmentNotFound    = errFrom(scoped(gatewayd.ErrNotFound, resEquipment, ""), "the equipment does not exist or is deleted")
	eReadingNotFound      = errFrom(scoped(gatewayd.ErrNotFound, resReading, ""), "no reading has this id")
	eWaveformNotFound     = errFrom(errNoWaveform, "the reading has no samples: it is not complete, or WAVEFORM_RETENTION removed them")
	eQueueFull            = errFrom(gatewayd.ErrQueueFull, "`READING_QUEUE_LIMIT` readings already wait on the sensor's gateway")
	eTokenNotFound        = errFrom(scoped(gatewayd.ErrNotFound, resToken, ""), "no token has this id")
	eUnauthorized         = errFrom(errUnauthorized, "no `Authorization: Bearer` token, or one that is unknown, expired or revoked").With(hWWWAuthenticate)
	eForbidden            = errFrom(errForbidden, "the token's role is below the one the operation needs")

	eOrganizationReference = errFrom(scoped(gatewayd.ErrInvalidReference, resFactory, "organization_id"),
		"`organization_id` names an organization that does not exist or is deleted").Named("OrganizationReferenceInvalid")
	eFactoryReference = errFrom(scoped(gatewayd.ErrInvalidReference, resGateway, "factory_id"),
		"`factory_id` names a factory that does not exist or is deleted").Named("FactoryReferenceInvalid")
	eEquipmentReference = errFrom(scoped(gatewayd.ErrInvalidReference, resSensor, "equipment_id"),
		"`equipment_id` names equipment that does not exist, is deleted, or belongs to another factory than the sensor's gateway").Named("EquipmentReferenceInvalid")

	eGatewayIDConflict = errFrom(gatewayd.ErrConflict, "another gateway that is not deleted has this `gateway_id`")
	eNotConnected      = errFrom(gatewayd.ErrNotConnected, "the gateway is not `AUTHENTICATED`")
	eNotRunning        = errFrom(gatewayd.ErrNotRunning, "the gateway's actor is not running (`FAILED`)").Named("GatewayNotRunning")
	eGatewayTimeout    = errFrom(gatewayd.ErrGatewayTimeout, "the gateway did not answer within `GATEWAY_COMMAND_TIMEOUT`")
	eGatewayError      = errFrom(gatewayd.ErrGatewayError, "the gateway answered with an error or with a malformed sensor list")
)

// mayBeHeld says whether an operation's answer may count against a
// budget of answers (answers.go): a GET whose answer may reach
// HeldAnswerMin and is not built once and shared.
func mayBeHeld(o *oa.Operation) bool {
	if o.Method() != fiber.MethodGet {
		return false
	}
	switch o.Path() {
	case "/api/health", "/api/ready", "/api/whoami", "/api/events", "/api/openapi.json", "/api/docs", docsCSSPath:
		return false
	}
	return true
}

// commonErrors are the errors an operation answers because of what it is.
func commonErrors(o *oa.Operation) []oa.ErrorDoc {
	var out []oa.ErrorDoc
	if o.HasParams() || o.HasBody() {
		out = append(out, eValidation)
	}
	// Any request, before routing: documented everywhere so that every
	// operation lists the 4xx it can get (Redocly's operation-4xx-response)
	// and the answers the edge gives it before it is routed: a malformed
	// request, a body that is too large or not JSON (README, "Bodies": on
	// every route, those that take none included), and a connection over
	// the client's share or past API_MAX_CONNECTIONS. (They were listed
	// only where a body, parameters or a token made them likely; found by
	// an audit, helper 12; the last was fasthttp's plain text, in no
	// document: helper 4.)
	out = append(out, eMalformed, ePayloadTooLarge, eUnsupportedMediaType, eTooManyConnections, eServerFull,
		eRequestTimeout, eHeadersTooLarge, eInternal, eHTTPVersion)
	if o.Can503() {
		out = append(out, eUnavailable)
	}
	if mayBeHeld(o) {
		out = append(out, eAnswersBusy)
	}
	if !livenessWhileStarting(o.Method(), o.Path()) {
		out = append(out, eStarting) // README, "Start": every route but health, .No503() ones too
	}
	if !o.IsPublic() {
		out = append(out, eUnauthorized, eTooManyGuesses)
		if r := roleOf(o); r != gatewayd.RoleViewer {
			out = append(out, eForbidden)
		}
	}
	return out
}

// routesByKey is routes.go's table, by "METHOD /path/{id}": the document
// takes every operation's access rule, and whether it answers HEAD, from
// the one place that enforces them.
func routesByKey() map[string]route {
	out := map[string]route{}
	for _, r := range (&server{opts: Options{ChaosEnabled: true}}).routeTable() {
		out[r.method+" "+strings.ReplaceAll(r.path, ":id", "{id}")] = r
	}
	return out
}

func roleOf(o *oa.Operation) gatewayd.Role {
	return routesByKey()[o.Method()+" "+o.Path()].need.role
}

// fromRoutes marks each operation public or with the role it needs, and a
// GET that answers HEAD too, as routes.go says.
func fromRoutes(ops []*oa.Operation) []*oa.Operation {
	routes := routesByKey()
	for _, o := range ops {
		r, ok := routes[o.Method()+" "+o.Path()]
		switch {
		case !ok:
			panic("openapi spec: " + o.Method() + " " + o.Path() + " is not in routes.go") // the spec tests catch it
		case r.need.public:
			o.Public()
		default:
			o.Needs(string(r.need.role))
		}
		if hasHead(r) {
			o.AlsoHead()
		}
	}
	return ops
}

// Tags, in the order of the docs page.
const (
	tagHealth        = "health"
	tagMeta          = "meta"
	tagOrganizations = "organizations"
	tagFactories     = "factories"
	tagGateways      = "gateways"
	tagRuntime       = "runtime"
	tagSensors       = "sensors"
	tagEquipment     = "equipment"
	tagReadings      = "readings"
	tagEvents        = "events"
	tagTokens        = "tokens"
	tagChaos         = "chaos"
)

// Schemas used by several components and operations.
var (
	sName        = oa.String().Length(1, 255).Pattern(`\S`).Desc("not all white space")
	sGatewayID   = oa.String().Length(1, 255).Pattern(`^[A-Za-z0-9._:-]+$`).Desc("ASCII letters, digits, `-`, `_`, `.` and `:`, so that no look-alike of another id can be registered")
	sMetadataIn  = oa.Metadata().Desc("a JSON object, at most 128 levels deep, no NUL characters; stored re-encoded with sorted keys, numbers keep their digits")
	sTimezone    = oa.String().Length(1, 64).Desc("an IANA time zone name such as `Europe/Berlin`")
	sDesired     = oa.Enum(gatewayd.DesiredConnected, gatewayd.DesiredDisconnected)
	sWSURL       = oa.String().Length(1, 500).Pattern(`^[Ww][Ss][Ss]?://[^/?#@]+`).Desc("a `ws://` or `wss://` URL with a host and no user info; at most one port, 1–65535; an IPv6 address in brackets; no white space or control character anywhere; a literal address must be one gatewayd may dial (`GATEWAY_ALLOWED_NETWORKS`, never link-local, unspecified or multicast), else 400")
	sEmail       = oa.String().Length(1, 255).Format("email").Desc("a plain address such as `ops@example.com` (no display name) whose domain has a dot, with no white space, control or invisible formatting character")
	sPassword    = oa.String().Length(1, 1024).WriteOnly().Desc("stored encrypted; never in any answer")
	sModel       = oa.String().Length(0, 100).Null()
	sFirmware    = oa.String().Length(0, 50).Null()
	sKind        = oa.String().Length(0, 100).Null()
	sLocation    = oa.String().Length(0, 500).Null()
	sInterval    = oa.String().Length(1, 32).Null().Desc("how often the sensor is read: a duration from `1m` to `366d` such as `15m`, `1h` or `2d`, in whole microseconds; null turns the schedule off")
	sStatusCount = oa.Integer().AtLeast(0)
)

// paged is limit and offset, then the list's UUID filters.
func paged(filters ...string) []oa.Param {
	p := []oa.Param{
		oa.QueryParam("limit", oa.Integer().Between(1, 100).Default(20), "page size, a plain decimal integer"),
		oa.QueryParam("offset", oa.Integer().Between(0, 1<<31).Default(0), "items to skip, a plain decimal integer"),
	}
	return append(p, uuidFilters(filters...)...)
}

func uuidFilters(names ...string) []oa.Param {
	var p []oa.Param
	for _, n := range names {
		p = append(p, oa.QueryParam(n, oa.UUID(), "only items of this "+n[:len(n)-3]))
	}
	return p
}

func apiSpec() *oa.Spec {
	stateCounts := make([]oa.Prop, len(gatewayd.States))
	for i, st := range gatewayd.States {
		stateCounts[i] = oa.Field(string(st), sStatusCount)
	}
	return &oa.Spec{
		Title:   "gatewayd",
		Version: "1.0.0",
		Description: "gatewayd keeps one authenticated WebSocket per active CTC Connect Wireless gateway and reports its live state.\n\n" +
			"JSON in and out. Field names are snake_case; times are RFC 3339 in UTC with exactly three fraction digits (`2026-11-29T05:32:54.123Z`). " +
			"A request body must be `Content-Type: application/json` and at most 1 MiB; unknown fields, duplicate keys, invalid UTF-8 and anything after the JSON value are 400. " +
			"Path ids are canonical 36-character UUIDs.\n\n" +
			"Lists take `limit` (1–100, default 20) and `offset` (default 0), ordered by name, then id, and answer `{\"data\": [...], \"pagination\": {...}}`; unknown or repeated query parameters are 400.\n\n" +
			"Every error has the ErrorResponse shape. Besides the answers each operation lists, an unknown route is 404 `NOT_FOUND` and a method a route does not take is 405 `METHOD_NOT_ALLOWED` with an `Allow` header listing the methods it takes.\n\n" +
			"With `AUTH_ENABLED` (the default) every operation but the health probes, this document and the docs page needs an API token, sent as `Authorization: Bearer gwd_…` (`gatewayd token create` makes the first): " +
			"a viewer may read everything, an operator may also connect, disconnect, discover sensors and take readings, an admin may do everything; each operation says which it needs (`x-required-role` in the OpenAPI document). " +
			"No token, or an unknown, expired or revoked one, is 401 `UNAUTHORIZED`; a role too low is 403 `FORBIDDEN`. `GET /metrics` is public with `METRICS_PUBLIC=true`.",
		// The project has no license file: nothing is granted, all rights
		// reserved. LicenseRef- is SPDX's form for a license not on its list.
		License: "Proprietary", LicenseID: "LicenseRef-Proprietary",
		// Relative: the document is served by the gatewayd it describes, so
		// its paths are on the same host and port, wherever that is.
		Servers: []oa.Server{{URL: "/", Description: "the gatewayd that serves this document"}},
		Tags: []oa.Tag{
			{Name: tagHealth, Description: "Liveness and readiness probes for orchestrators and load balancers."},
			{Name: tagMeta, Description: "This description: the OpenAPI document and the docs page."},
			{Name: tagOrganizations, Description: "The top of the hierarchy: an organization has factories. Deleting one deletes its factories and their gateways."},
			{Name: tagFactories, Description: "A factory belongs to an organization and has gateways and equipment. Deleting one deletes its gateways and equipment."},
			{Name: tagGateways, Description: "CTC Connect Wireless gateways: where to connect and with which credentials. The password is stored encrypted and never answered."},
			{Name: tagRuntime, Description: "Live connection state, answered by each gateway's actor, and the commands that change it."},
			{Name: tagSensors, Description: "Sensors the gateways report, found through the live connection; they can be named, assigned to equipment and read on a schedule."},
			{Name: tagEquipment, Description: "Machines of a factory that sensors are assigned to."},
			{Name: tagReadings, Description: "Vibration readings: acquired on demand, on a schedule or when a gateway pushes one; stored compactly and analysed once."},
			{Name: tagTokens, Description: "API tokens with roles (viewer, operator, admin); only a hash of each is stored. Admins only, but for `GET /api/whoami`."},
			{Name: tagEvents, Description: "What changes, as it happens: Server-Sent Events, and Prometheus metrics at `GET /metrics`."},
			{Name: tagChaos, Description: "Drills for operators; the routes exist only with `CHAOS_ENABLED=true`."},
		},
		// Every answer's X-Request-Id (API.md §3), declared on every
		// response: it was only a request header here (found by an
		// audit, helper 12).
		AnswerHeaders: []oa.RespHeader{{Component: "RequestId", Name: "X-Request-Id", Always: true, Schema: oa.String().Length(1, 128),
			Description: "the request's id, as the access log names it: the client's `X-Request-Id` when it is at most 128 printable ASCII characters, else a new UUID"}},
		Headers: []oa.Header{{Component: "RequestId", Name: "X-Request-Id", Schema: oa.String().Length(1, 128),
			Description: "echoed in the answer's `X-Request-Id` when it is at most 128 printable ASCII characters; otherwise a new UUID is sent"}},
		GoTypes: map[reflect.Type]*oa.Schema{
			reflect.TypeOf(Time{}):            oa.Time(),
			reflect.TypeOf(json.RawMessage{}): oa.Metadata().Desc("a JSON object, as stored"),
		},
		ErrorSchema: "ErrorResponse",
		Common:      commonErrors,
		RouteErrors: []oa.ErrorDoc{eRouteNotFound, eMethodNotAllowed},

		Bearer: "An API token (`gwd_…`) from `gatewayd token create` or `POST /api/tokens`, when `AUTH_ENABLED` (the default). " +
			"viewer: every GET; operator: also connect, disconnect, discover and readings; admin: everything. " +
			"`GET /api/events` also takes it as the `access_token` query parameter (EventSource cannot send headers).",
		Operations: fromRoutes([]*oa.Operation{
			oa.Get("/api/health", "getHealth", "Liveness: 200 while the process serves").In(tagHealth).
				Doc("Stays 200 when the database is down: `database` says `unreachable`.").
				OK(oa.Ref("Health")).No503(),
			oa.Get("/api/ready", "getReady", "Readiness: the database answers and the gateways are loaded").In(tagHealth).
				OK(oa.Object(oa.Field("status", oa.Const("ready")))).Fails(eStillLoading),

			oa.Get("/api/openapi.json", "getOpenApiDocument", "This description as an OpenAPI 3.1 document").In(tagMeta).
				OK(oa.Metadata().Desc("an OpenAPI 3.1 document")).No503(),
			oa.Get("/api/docs", "getDocsPage", "This description as a web page, without JavaScript").In(tagMeta).
				OK(oa.String()).As(fiber.MIMETextHTMLCharsetUTF8).No503(),
			oa.Get("/api/docs/docs.css", "getDocsStylesheet", "The docs page's stylesheet").In(tagMeta).
				OK(oa.String()).As("text/css; charset=utf-8").No503(),

			oa.Post("/api/organizations", "createOrganization", "Create an organization").In(tagOrganizations).
				Takes("OrganizationCreate").Created(oa.Ref("Organization")).Sends(hLocation("/api/organizations/{id}")),
			oa.Get("/api/organizations", "listOrganizations", "List organizations").In(tagOrganizations).
				Query(paged()...).OK(oa.Ref("OrganizationPage")),
			oa.Get("/api/organizations/{id}", "getOrganization", "Get an organization").In(tagOrganizations).
				OK(oa.Ref("Organization")).Fails(eOrganizationNotFound),
			oa.Put("/api/organizations/{id}", "updateOrganization", "Change an organization; absent fields stay as they are").In(tagOrganizations).
				Takes("OrganizationUpdate").OK(oa.Ref("Organization")).Fails(eOrganizationNotFound),
			oa.Delete("/api/organizations/{id}", "deleteOrganization", "Delete an organization with its factories and their gateways").In(tagOrganizations).
				Doc("A soft delete, in one transaction; the deleted gateways' actors close their sockets (code 1000).").
				NoContent().Fails(eOrganizationNotFound),

			oa.Post("/api/factories", "createFactory", "Create a factory").In(tagFactories).
				Takes("FactoryCreate").Created(oa.Ref("Factory")).Sends(hLocation("/api/factories/{id}")).Fails(eOrganizationReference),
			oa.Get("/api/factories", "listFactories", "List factories").In(tagFactories).
				Query(paged("organization_id")...).OK(oa.Ref("FactoryPage")),
			oa.Get("/api/factories/{id}", "getFactory", "Get a factory").In(tagFactories).
				OK(oa.Ref("Factory")).Fails(eFactoryNotFound),
			oa.Put("/api/factories/{id}", "updateFactory", "Change a factory; absent fields stay as they are").In(tagFactories).
				Takes("FactoryUpdate").OK(oa.Ref("Factory")).Fails(eFactoryNotFound),
			oa.Delete("/api/factories/{id}", "deleteFactory", "Delete a factory with its gateways and equipment").In(tagFactories).
				Doc("A soft delete, in one transaction; the deleted gateways' actors close their sockets (code 1000).").
				NoContent().Fails(eFactoryNotFound),

			oa.Post("/api/gateways", "createGateway", "Create a gateway; its actor starts connecting").In(tagGateways).
				Doc("Unless it is created with `desired_state` `DISCONNECTED`.").
				Takes("GatewayCreate").Created(oa.Ref("Gateway")).Sends(hLocation("/api/gateways/{id}")).Fails(eFactoryReference, eGatewayIDConflict),
			oa.Get("/api/gateways", "listGateways", "List gateways").In(tagGateways).
				Query(paged("factory_id")...).OK(oa.Ref("GatewayPage")),
			oa.Get("/api/gateways/{id}", "getGateway", "Get a gateway").In(tagGateways).
				OK(oa.Ref("Gateway")).Fails(eGatewayNotFound),
			oa.Put("/api/gateways/{id}", "updateGateway", "Change a gateway; absent fields stay as they are").In(tagGateways).
				Doc("A `url`, `email` or `password` different from the current one makes the actor reconnect with the new settings; anything else, a repeated url included, leaves the connection alone. A `desired_state` different from the stored one acts as connect or disconnect.").
				Takes("GatewayUpdate").OK(oa.Ref("Gateway")).Fails(eGatewayNotFound, eGatewayIDConflict),
			oa.Delete("/api/gateways/{id}", "deleteGateway", "Delete a gateway; its actor closes the socket (code 1000)").In(tagGateways).
				NoContent().Fails(eGatewayNotFound),

			oa.Get("/api/gateways/status", "listGatewayStatuses", "Live status of every gateway, with counts per state").In(tagRuntime).
				Doc("Every matching gateway, ordered by id, not paged: `limit` or `offset` is 400.").
				Query(uuidFilters("factory_id")...).OK(oa.Ref("StatusList")),
			oa.Get("/api/gateways/{id}/status", "getGatewayStatus", "Live status, answered by the gateway's actor").In(tagRuntime).
				OK(oa.Ref("Status")).Fails(eGatewayNotFound),
			oa.Post("/api/gateways/{id}/connect", "connectGateway", "Want the gateway connected").In(tagRuntime).
				Doc("Stores `desired_state` `CONNECTED` first, then acts; idempotent; also leaves `AUTH_FAILED` and `FAILED`. Takes no body.").
				Accepted(oa.Ref("Status")).Fails(eGatewayNotFound),
			oa.Post("/api/gateways/{id}/disconnect", "disconnectGateway", "Want the gateway disconnected").In(tagRuntime).
				Doc("Stores `desired_state` `DISCONNECTED` first, then closes the socket (code 1000); no retries until connect; idempotent. Takes no body.").
				Accepted(oa.Ref("Status")).Fails(eGatewayNotFound),

			oa.Get("/api/sensors", "listSensors", "List sensors, ordered by gateway, then serial").In(tagSensors).
				Query(paged("gateway_id", "equipment_id", "factory_id")...).OK(oa.Ref("SensorPage")),
			oa.Get("/api/sensors/{id}", "getSensor", "Get a sensor").In(tagSensors).
				OK(oa.Ref("Sensor")).Fails(eSensorNotFound),
			oa.Put("/api/sensors/{id}", "updateSensor", "Name a sensor, assign it to equipment, schedule its readings").In(tagSensors).
				Takes("SensorUpdate").OK(oa.Ref("Sensor")).Fails(eSensorNotFound, eEquipmentReference),
			oa.Get("/api/gateways/{id}/sensors", "listGatewaySensors", "List one gateway's sensors, ordered by serial").In(tagSensors).
				Query(paged("equipment_id", "factory_id")...).OK(oa.Ref("SensorPage")).Fails(eGatewayNotFound),
			oa.Post("/api/gateways/{id}/sensors/discover", "discoverGatewaySensors", "Ask the gateway for its sensors now").In(tagSensors).
				Doc("Sends `GET_DYN_CONNECTED` on the live connection, merges the answer, and answers all of the gateway's sensors (not paged). Takes no body.").
				OK(oa.Object(oa.Field("data", oa.Array(oa.Ref("Sensor"))))).
				Fails(eGatewayNotFound, eNotConnected, eNotRunning, eGatewayError, eGatewayTimeout),

			oa.Post("/api/equipment", "createEquipment", "Create equipment").In(tagEquipment).
				Takes("EquipmentCreate").Created(oa.Ref("Equipment")).Sends(hLocation("/api/equipment/{id}")).Fails(eFactoryReference),
			oa.Get("/api/equipment", "listEquipment", "List equipment").In(tagEquipment).
				Query(paged("factory_id")...).OK(oa.Ref("EquipmentPage")),
			oa.Get("/api/equipment/{id}", "getEquipment", "Get equipment").In(tagEquipment).
				OK(oa.Ref("Equipment")).Fails(eEquipmentNotFound),
			oa.Put("/api/equipment/{id}", "updateEquipment", "Change equipment; absent fields stay as they are").In(tagEquipment).
				Takes("EquipmentUpdate").OK(oa.Ref("Equipment")).Fails(eEquipmentNotFound),
			oa.Delete("/api/equipment/{id}", "deleteEquipment", "Delete equipment; its sensors are unassigned").In(tagEquipment).
				NoContent().Fails(eEquipmentNotFound),

			oa.Post("/api/sensors/{id}/readings", "takeReading", "Take a reading of the sensor now").In(tagReadings).
				Doc("Stores the reading `QUEUED` and hands it to the gateway's actor, which runs one acquisition at a time. Takes no body; poll `GET /api/readings/{id}` or follow `/api/events`.").
				Accepted(oa.Ref("Reading")).Sends(hLocation("/api/readings/{id}")).Fails(eSensorNotFound, eNotConnected, eNotRunning, eQueueFull),
			oa.Get("/api/sensors/{id}/readings", "listSensorReadings", "List a sensor's readings, newest first").In(tagReadings).
				Query(append(paged(),
					oa.QueryParam("status", oa.Enum(gatewayd.ReadingQueued, gatewayd.ReadingRunning, gatewayd.ReadingComplete, gatewayd.ReadingFailed), "only readings in this status"),
					oa.QueryParam("since", oa.String().Format("date-time"), "only readings requested at or after this RFC 3339 time"),
					oa.QueryParam("until", oa.String().Format("date-time"), "only readings requested before this RFC 3339 time"))...).
				OK(oa.Ref("ReadingPage")).Fails(eSensorNotFound),
			oa.Get("/api/readings/{id}", "getReading", "Get a reading with its summary").In(tagReadings).
				OK(oa.Ref("Reading")).Fails(eReadingNotFound),
			oa.Get("/api/readings/{id}/waveform", "getReadingWaveform", "A reading's samples, in g").In(tagReadings).
				Doc("JSON by default; with `Accept: text/csv`, CSV rows `t,x,y,z` (t in seconds from the first sample). Either is streamed (chunked), made as it is sent.").
				OK(oa.Ref("Waveform")).
				OrAs("text/csv", oa.String().Desc("a header line `t,x,y,z`, then one row per sample: t in seconds from the first sample, x, y and z in g; sent as `text/csv; charset=utf-8`")).
				Fails(eReadingNotFound, eWaveformNotFound),
			oa.Get("/api/readings/{id}/spectrum", "getReadingSpectrum", "The single-sided amplitude spectrum of one axis").In(tagReadings).
				Doc("Hann window, corrected for its coherent gain, so a sine of amplitude A peaks at A.").
				Query(oa.QueryParam("axis", oa.Enum("x", "y", "z").Default("x"), "the axis")).
				OK(oa.Ref("Spectrum")).Fails(eReadingNotFound, eWaveformNotFound),

			oa.Get("/api/events", "streamEvents", "Follow changes as they happen (Server-Sent Events)").In(tagEvents).
				Doc("Events `gateway.state`, `gateway.created`, `gateway.updated`, `gateway.deleted`, `sensor.updated`, `reading.completed`, `reading.failed`, each with an increasing `id:` and a JSON `data:` line. `Last-Event-ID` (or `last_event_id`) resumes from the last `EVENTS_BUFFER` events; an id older than that, or from another process, gets `event: reset` first. A comment every 15 s keeps proxies open. Events are written in batches: one is sent at most 10 ms after it was published. A client that falls `EVENTS_CLIENT_BUFFER` events behind (10,000 by default) gets `event: overflow` and is closed. The response has `Connection: close` and no `Content-Length` or chunked framing: the body runs until the connection closes.").
				Query(append(uuidFilters("factory_id", "gateway_id"),
					oa.QueryParam("last_event_id", oa.Integer().AtLeast(0), "resume after this event id (the Last-Event-ID header does the same)"),
					// Both read by the stream and refused when bad (400, 401),
					// and were only prose here (found by an audit, helper 12).
					oa.HeaderParam("Last-Event-ID", oa.Integer().AtLeast(0), "resume after this event id, as EventSource sends it when it reconnects"))...).
				TokenInQuery("access_token").
				OK(oa.String().Desc("a text/event-stream")).As("text/event-stream").No503().Fails(eTooManyStreams),

			oa.Post("/api/debug/gateways/{id}/crash", "crashGateway", "Make the gateway's actor panic").In(tagChaos).
				Doc("Its supervisor restarts it: the socket is closed and reopened and `restarts` grows by one. The panic says `chaos: crash requested`. Takes no body.").
				Accepted(oa.Object(oa.Field("status", oa.Const("crash requested")))).
				Fails(eGatewayNotFound, eRouteNotFound.Because("ChaosDisabled", "`CHAOS_ENABLED` is not true: the route does not exist"), eNotRunning),

			oa.Get("/api/whoami", "whoami", "The token this request carries, and its role").In(tagTokens).
				Doc("Any valid token may ask, whatever its role, so that a client offers only what the API accepts. With `AUTH_ENABLED=false` every request may do everything: `auth_enabled` is false, `role` admin and `token` null.").
				OK(oa.Ref("Whoami")),
			oa.Post("/api/tokens", "createToken", "Create an API token").In(tagTokens).
				Doc("The answer holds the token's secret in `token`: the only time it is shown; only its SHA-256 hash is stored.").
				Takes("TokenCreate").Created(oa.Ref("NewToken")),
			oa.Get("/api/tokens", "listTokens", "List the API tokens, revoked ones included").In(tagTokens).
				Query(paged()...).OK(oa.Ref("TokenPage")),
			oa.Delete("/api/tokens/{id}", "revokeToken", "Revoke an API token; it is refused within 5 s").In(tagTokens).
				NoContent().Fails(eTokenNotFound),
			oa.Get("/metrics", "getMetrics", "Prometheus metrics (text format)").In(tagEvents).
				Doc("Needs a viewer token unless `METRICS_PUBLIC=true`. The text format unless `Accept` prefers Prometheus's delimited protocol buffers (as Prometheus asks with native histograms on).").
				OK(oa.String()).As("text/plain; version=0.0.4").
				// promhttp negotiates it; it was undocumented (found by an
				// audit, helper 12).
				OrAs("application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
					oa.String().Desc("length-delimited `io.prometheus.client.MetricFamily` protocol buffer messages")).No503(),
		}),

		Components: []oa.Component{
			oa.Record("Organization", organizationJSON{}, "An organization."),
			oa.Record("Factory", factoryJSON{}, "A factory.",
				oa.Field("location", oa.String().Desc("free text; null when not set")),
				oa.Field("timezone", oa.String().Desc("an IANA time zone name"))),
			oa.Record("Gateway", gatewayJSON{}, "A gateway's settings. There is no password field in any form.",
				oa.Field("gateway_id", oa.String().Desc("the operator's name for the gateway, unique among gateways that are not deleted")),
				oa.Field("url", oa.String().Desc("the gateway's `ws://` or `wss://` URL")),
				oa.Field("email", oa.String().Format("email").Desc("the login the gateway accepts")),
				oa.Field("last_seen_at", oa.Time().Desc("the last successful login or sign of life, written at least once a minute while authenticated")),
				oa.Field("desired_state", sDesired)),
			oa.Record("Status", statusJSON{}, "A gateway's live connection state.",
				oa.Field("state", oa.Enum(gatewayd.States...).Desc("`CONNECTING`: dialing and handshake; `CONNECTED`: socket open, waiting for the login answer; `AUTHENTICATED`: usable; `BACKOFF`: the last attempt failed, retrying at `next_retry_at`; `AUTH_FAILED`: credentials refused, no retries until they change or a connect; `DISCONNECTED`: the desired state is disconnected; `FAILED`: the actor crashed too often, no retries until a connect or a change")),
				oa.Field("desired_state", sDesired),
				oa.Field("since", oa.Time().Desc("when `state` last changed")),
				oa.Field("connected_at", oa.Time().Desc("the last successful login")),
				oa.Field("last_error", oa.String().Desc("why the last attempt failed, at most 1 KiB")),
				oa.Field("reconnect_attempts", oa.Integer().Desc("failures since the last successful login")),
				oa.Field("next_retry_at", oa.Time().Desc("when `BACKOFF` dials again")),
				oa.Field("restarts", oa.Integer().Desc("supervisor restarts of the gateway's actor since the process started"))),
			oa.Record("StatusList", statusListJSON{}, "Every matching gateway's status and how many are in each state.",
				oa.Field("counts", oa.Object(stateCounts...).Desc("every state, 0 included"))),
			oa.Record("Sensor", sensorJSON{}, "A sensor a gateway reported.",
				oa.Field("serial", oa.Integer().Format("int64").Desc("the sensor's serial number, unique per gateway")),
				oa.Field("name", oa.String().Desc("the gateway's name for the sensor unless one was set through the API")),
				oa.Field("connected", oa.Bool().Desc("whether the gateway's last sensor list had it")),
				oa.Field("reading_interval", oa.String().Desc("the reading schedule as a Go duration string such as `15m0s`; null when off")),
				oa.Field("last_temperature_c", oa.Number().Desc("the last temperature the gateway reported, in °C"))),
			oa.Record("Equipment", equipmentJSON{}, "A machine of a factory.",
				oa.Field("kind", oa.String().Desc("free text, e.g. pump"))),
			oa.Record("OrganizationPage", listJSON[organizationJSON]{}, "A page of organizations."),
			oa.Record("FactoryPage", listJSON[factoryJSON]{}, "A page of factories."),
			oa.Record("TokenPage", listJSON[tokenJSON]{}, "A page of API tokens."),
			oa.Record("GatewayPage", listJSON[gatewayJSON]{}, "A page of gateways."),
			oa.Record("SensorPage", listJSON[sensorJSON]{}, "A page of sensors."),
			oa.Record("EquipmentPage", listJSON[equipmentJSON]{}, "A page of equipment."),
			oa.Record("Token", tokenJSON{}, "An API token, without its secret.",
				oa.Field("role", oa.Enum(gatewayd.Roles...))),
			oa.Record("Whoami", whoamiJSON{}, "What the request's own token may do.",
				oa.Field("auth_enabled", oa.Bool().Desc("whether `AUTH_ENABLED` is on")),
				oa.Field("role", oa.Enum(gatewayd.Roles...).Desc("what the request may do: admin when access control is off")),
				oa.Field("token", oa.Ref("Token").Null().Desc("the token, without its secret; null when access control is off"))),
			oa.Named("NewToken", oa.Object(
				oa.Field("id", oa.UUID()), oa.Field("name", oa.String()), oa.Field("role", oa.Enum(gatewayd.Roles...)),
				oa.Field("created_at", oa.Time()), oa.Field("last_used_at", oa.Time().Null()),
				oa.Field("expires_at", oa.Time().Null()), oa.Field("revoked_at", oa.Time().Null()),
				oa.Field("token", oa.String().Desc("the secret: `gwd_` and 43 base64url characters; shown this once")),
			).Desc("A new API token with its secret.")),
			oa.Named("TokenCreate", oa.Input(
				oa.Field("name", sName),
				oa.Field("role", oa.Enum(gatewayd.Roles...)),
				oa.Opt("expires_in", oa.String().Length(1, 32).Desc("a lifetime such as `90d` or `12h`, up to `3660d`; none: it never expires")))),
			oa.Record("Reading", readingJSON{}, "A vibration reading.",
				oa.Field("trigger", oa.Enum(gatewayd.TriggerManual, gatewayd.TriggerScheduled, gatewayd.TriggerGateway)),
				oa.Field("status", oa.Enum(gatewayd.ReadingQueued, gatewayd.ReadingRunning, gatewayd.ReadingComplete, gatewayd.ReadingFailed)),
				oa.Field("error", oa.String().Desc("why it failed, in the gateway's words when it gave some")),
				oa.Field("summary", oa.Object(oa.Field("x", oa.Ref("AxisSummary")), oa.Field("y", oa.Ref("AxisSummary")),
					oa.Field("z", oa.Ref("AxisSummary"))).Null().Desc("the analysis per axis; null until the reading is `COMPLETE`"))),
			oa.Named("AxisSummary", oa.Object(
				oa.Field("samples", oa.Integer()),
				oa.Field("min", oa.Number().Desc("g")), oa.Field("max", oa.Number().Desc("g")), oa.Field("mean", oa.Number().Desc("g")),
				oa.Field("rms", oa.Number().Desc("g, of the mean-removed signal")),
				oa.Field("peak", oa.Number().Desc("g, the largest deviation from the mean")),
				oa.Field("peak_to_peak", oa.Number().Desc("g")),
				oa.Field("crest_factor", oa.Number().Desc("peak over rms")),
				oa.Field("velocity_rms_mm_s", oa.Number().Desc("velocity RMS over 10–1000 Hz (ISO 20816), integrated from the acceleration spectrum")),
				oa.Field("dominant_frequency_hz", oa.Number().Desc("the strongest spectrum bin above 2 Hz")),
			).Desc("One axis of a reading, analysed once when it was stored.")),
			oa.Record("ReadingPage", listJSON[readingJSON]{}, "A page of readings."),
			oa.Named("Waveform", oa.Object(
				oa.Field("sample_rate_hz", oa.Number().Null()),
				oa.Field("unit", oa.Const("g")),
				oa.Field("x", oa.Array(oa.Number())), oa.Field("y", oa.Array(oa.Number())), oa.Field("z", oa.Array(oa.Number())),
			).Desc("A reading's samples.")),
			oa.Named("Spectrum", oa.Object(
				oa.Field("axis", oa.Enum("x", "y", "z")),
				oa.Field("unit", oa.Const("g")),
				oa.Field("frequency_hz", oa.Array(oa.Number())),
				oa.Field("amplitude", oa.Array(oa.Number())),
			).Desc("A single-sided amplitude spectrum.")),
			oa.Record("Pagination", pagination{}, "Where a page is in its list.",
				oa.Field("total", oa.Integer().Desc("items in the whole list"))),
			oa.Named("Health", oa.Object(
				oa.Field("status", oa.Const("ok")),
				oa.Field("database", oa.Enum("ok", "unreachable")),
				oa.Field("gateways", oa.Object(
					oa.Field("total", oa.Integer().Desc("gateways the runtime knows")),
					oa.Field("authenticated", oa.Integer().Desc("of those, `AUTHENTICATED`")))),
				oa.Field("uptime_seconds", oa.Integer().Desc("whole seconds since the process started")),
			).Desc("The process serves; how the database and the gateways are.")),
			oa.Named("ErrorResponse", oa.Object(oa.Field("error", oa.Ref("Error"))).Desc("Every error answer.")),
			oa.Record("Error", Error{}, "What went wrong.",
				oa.Field("statusCode", oa.Integer().Desc("the HTTP status")),
				oa.Field("code", oa.String().Desc("machine-readable, such as `GATEWAY_NOT_FOUND`")),
				oa.Field("message", oa.String().Desc("for people; nothing internal"))),
			oa.Record("Detail", Detail{}, "One problem with one field (or `body`, `request`)."),

			oa.Named("OrganizationCreate", oa.Input(
				oa.Field("name", sName),
				oa.Opt("metadata", sMetadataIn))),
			oa.Named("OrganizationUpdate", oa.Input(
				oa.Opt("name", sName),
				oa.Opt("metadata", sMetadataIn))),
			oa.Named("FactoryCreate", oa.Input(
				oa.Field("organization_id", oa.UUID()),
				oa.Field("name", sName),
				oa.Opt("location", sLocation),
				oa.Opt("timezone", sTimezone.Default("UTC")),
				oa.Opt("metadata", sMetadataIn))),
			oa.Named("FactoryUpdate", oa.Input(
				oa.Opt("name", sName),
				oa.Opt("location", sLocation.Desc("null clears it")),
				oa.Opt("timezone", sTimezone),
				oa.Opt("metadata", sMetadataIn)).Desc("`organization_id` cannot be changed (400).")),
			oa.Named("GatewayCreate", oa.Input(
				oa.Field("factory_id", oa.UUID()),
				oa.Field("gateway_id", sGatewayID),
				oa.Field("name", sName),
				oa.Field("url", sWSURL),
				oa.Field("email", sEmail),
				oa.Field("password", sPassword),
				oa.Opt("model", sModel),
				oa.Opt("firmware_version", sFirmware),
				oa.Opt("desired_state", sDesired.Default(string(gatewayd.DesiredConnected))),
				oa.Opt("metadata", sMetadataIn))),
			oa.Named("GatewayUpdate", oa.Input(
				oa.Opt("gateway_id", sGatewayID),
				oa.Opt("name", sName),
				oa.Opt("url", sWSURL),
				oa.Opt("email", sEmail),
				oa.Opt("password", sPassword.Desc("stored encrypted; never in any answer; required when `url` or `email` changes, so the stored secret never follows a gateway to a new host")),
				oa.Opt("model", sModel.Desc("null clears it")),
				oa.Opt("firmware_version", sFirmware.Desc("null clears it")),
				oa.Opt("desired_state", sDesired.Desc("a different one acts as connect or disconnect")),
				oa.Opt("metadata", sMetadataIn)).Desc("`factory_id` cannot be changed (400).")),
			oa.Named("SensorUpdate", oa.Input(
				oa.Opt("name", sName),
				oa.Opt("equipment_id", oa.UUID().Null().Desc("equipment of the sensor's factory; null unassigns")),
				oa.Opt("reading_interval", sInterval),
				oa.Opt("metadata", sMetadataIn))),
			oa.Named("EquipmentCreate", oa.Input(
				oa.Field("factory_id", oa.UUID()),
				oa.Field("name", sName),
				oa.Opt("kind", sKind),
				oa.Opt("metadata", sMetadataIn))),
			oa.Named("EquipmentUpdate", oa.Input(
				oa.Opt("name", sName),
				oa.Opt("kind", sKind.Desc("null clears it")),
				oa.Opt("metadata", sMetadataIn)).Desc("`factory_id` cannot be changed (400).")),
		},
	}
}
