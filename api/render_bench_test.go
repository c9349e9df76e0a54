package api

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ctcgw/gatewayd"
	"github.com/ctcgw/gatewayd/store"
)

func sampleGateway() gatewayd.Gateway {
	now := time.Now()
	model := "CTC-W1"
	return gatewayd.Gateway{ID: uuid.New(), FactoryID: uuid.New(), GatewayID: "GW-0042", Name: "Line 4 east",
		URL: "wss://10.0.4.2:8443/ws", Email: "ops@example.com", Model: &model, LastSeenAt: &now,
		Metadata: json.RawMessage(`{"line":4,"hall":"east"}`), CreatedAt: now, UpdatedAt: now}
}

func BenchmarkRenderGateway(b *testing.B) {
	g := sampleGateway()
	for b.Loop() {
		if _, err := json.Marshal(renderGateway(g)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderGatewayPage(b *testing.B) {
	items := make([]gatewayd.Gateway, 20)
	for i := range items {
		items[i] = sampleGateway()
	}
	page := store.Page{Limit: 20}
	for b.Loop() {
		if _, err := json.Marshal(renderList(items, 1000, page, renderGateway)); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkRenderStatus(b *testing.B) {
	now := time.Now()
	st := gatewayd.Status{ID: uuid.New(), State: gatewayd.StateAuthenticated, Desired: gatewayd.DesiredConnected, Since: now,
		ConnectedAt: &now, LastSeenAt: &now}
	for b.Loop() {
		if _, err := json.Marshal(renderStatus(st)); err != nil {
			b.Fatal(err)
		}
	}
}
