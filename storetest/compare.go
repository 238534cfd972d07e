package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"time"
)

// serverFields are added by Veritrail to what a client sent.
var serverFields = []string{"seq", "received_at", "content_digest", "content_salt"}

// SameEvent reports how an event as returned (out) differs from the event
// as sent (in): every field sent must come back with the same value (times
// as the same instant, content as the same JSON value), and nothing may come
// back that was not sent, except the fields the server adds.
func SameEvent(in, out []byte) error {
	var a, b map[string]any
	for _, x := range []struct {
		src []byte
		dst *map[string]any
	}{{in, &a}, {out, &b}} {
		dec := json.NewDecoder(bytes.NewReader(x.src))
		dec.UseNumber()
		if err := dec.Decode(x.dst); err != nil {
			return fmt.Errorf("decode %s: %w", x.src, err)
		}
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok {
			return fmt.Errorf("field %q was sent but not returned", k)
		}
		if k == "time" {
			as, _ := av.(string)
			bs, _ := bv.(string)
			ta, err1 := time.Parse(time.RFC3339Nano, as)
			tb, err2 := time.Parse(time.RFC3339Nano, bs)
			if err1 != nil || err2 != nil || !ta.Equal(tb) {
				return fmt.Errorf("time: sent %v, returned %v", av, bv)
			}
			continue
		}
		if !reflect.DeepEqual(av, bv) {
			return fmt.Errorf("field %q: sent %v, returned %v", k, av, bv)
		}
	}
	for k := range b {
		if _, ok := a[k]; ok || slices.Contains(serverFields, k) || (k == "id" && a["id"] == nil) || (k == "time" && a["time"] == nil) {
			continue
		}
		return fmt.Errorf("field %q was returned but not sent", k)
	}
	return nil
}
