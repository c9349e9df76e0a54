// Package gatewayd is the domain of the service: what a gateway is, its
// credentials, the states of its connection and the errors that cross
// layers. Every layer speaks these types; this package imports nothing of
// the project (the layers depend on it, never the reverse):
//
//	cmd/gatewayd ──> api ──┬──> actors ──> ctc
//	                       └──> store
//	actors, store, api ──> gatewayd
package gatewayd
