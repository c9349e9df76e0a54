package events

import (
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilterMatch(t *testing.T) {
	t.Parallel()
	fa, fb := uuid.New(), uuid.New()
	ga, gb := uuid.New(), uuid.New()
	nilID := uuid.Nil

	tests := []struct {
		name   string
		filter Filter
		event  Event
		want   bool
	}{
		{"no filter takes everything", Filter{}, Event{FactoryID: fa, GatewayID: ga}, true},
		{"no filter takes an event about nothing", Filter{}, Event{}, true},
		{"factory matches", Filter{FactoryID: &fa}, Event{FactoryID: fa, GatewayID: ga}, true},
		{"other factory", Filter{FactoryID: &fa}, Event{FactoryID: fb, GatewayID: ga}, false},
		{"event without factory never matches a factory filter", Filter{FactoryID: &fa}, Event{GatewayID: ga}, false},
		{"gateway matches", Filter{GatewayID: &ga}, Event{FactoryID: fa, GatewayID: ga}, true},
		{"other gateway", Filter{GatewayID: &ga}, Event{FactoryID: fa, GatewayID: gb}, false},
		{"event without gateway never matches a gateway filter", Filter{GatewayID: &ga}, Event{FactoryID: fa}, false},
		{"both match", Filter{FactoryID: &fa, GatewayID: &ga}, Event{FactoryID: fa, GatewayID: ga}, true},
		{"both, factory differs", Filter{FactoryID: &fb, GatewayID: &ga}, Event{FactoryID: fa, GatewayID: ga}, false},
		{"a Nil filter value matches nothing", Filter{FactoryID: &nilID}, Event{GatewayID: ga}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			assert.Equal(t, tt.want, tt.filter.Match(tt.event))
		})
	}
}

func TestFilterCloneIsIndependent(t *testing.T) {
	t.Parallel()
	fa, fb := uuid.New(), uuid.New()
	f := Filter{FactoryID: &fa}
	c := f.clone()
	fa = fb // the caller reuses its variable after subscribing
	require.NotNil(t, c.FactoryID)
	assert.NotEqual(t, fb, *c.FactoryID)
	assert.Nil(t, c.GatewayID)
}

func TestEventValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		event Event
		ok    bool
	}{
		{"object", Event{Type: TypeGatewayState, Data: []byte(`{"id":"x"}`)}, true},
		{"empty data", Event{Type: TypeGatewayDeleted}, true},
		{"empty type", Event{Data: []byte(`{}`)}, false},
		{"type with newline", Event{Type: "a\nb"}, false},
		{"type with carriage return", Event{Type: "a\rb"}, false},
		{"indented JSON", Event{Type: TypeGatewayState, Data: []byte("{\n \"id\": 1\n}")}, false},
		{"carriage return in data", Event{Type: TypeGatewayState, Data: []byte("{\r}")}, false},
		{"array", Event{Type: TypeGatewayState, Data: []byte(`[1]`)}, false},
		{"string", Event{Type: TypeGatewayState, Data: []byte(`"x"`)}, false},
		// Starts like an object but is cut short: not a JSON object.
		{"unclosed object", Event{Type: TypeGatewayState, Data: []byte(`{"id":1`)}, false},
		{"object followed by more", Event{Type: TypeGatewayState, Data: []byte(`{"id":1} x`)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := tt.event.validate()
			if tt.ok {
				assert.NoError(t, err)
			} else {
				assert.ErrorIs(t, err, ErrInvalidEvent)
			}
		})
	}
}
