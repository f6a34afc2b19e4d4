package service_test

import (
	"fmt"
	"time"

	"github.com/citymesh/citymesh/service"
)

// A meter reading delivered twice, then an older one that a mesh link
// delivered late, then the service restarts: each reading is applied once.
func ExampleDedup() {
	store := service.NewMemoryStore()
	st := store.State("energy")
	dd, _ := service.NewDedup(st.Sub("dedup"), 24*time.Hour)
	t0 := time.Date(2026, 5, 12, 7, 0, 0, 0, time.UTC)
	apply := func(point string, at time.Time, kWh string) {
		v, err := dd.Apply(point, at, func(b *service.Batch) error {
			b.Set(st, "reading/"+point+"/"+at.Format(time.RFC3339), []byte(kWh))
			return nil
		})
		fmt.Println(point, at.Format("15:04"), v, err)
	}
	apply("el-b01-main/1-0:1.8.0", t0.Add(15*time.Minute), "12345.6")
	apply("el-b01-main/1-0:1.8.0", t0.Add(15*time.Minute), "12345.6") // QoS 1 redelivery
	apply("el-b01-main/1-0:1.8.0", t0, "12340.1")                     // late, through the mesh

	dd, _ = service.NewDedup(st.Sub("dedup"), 24*time.Hour) // after a restart
	apply("el-b01-main/1-0:1.8.0", t0, "12340.1")
	// Output:
	// el-b01-main/1-0:1.8.0 07:15 new <nil>
	// el-b01-main/1-0:1.8.0 07:15 duplicate <nil>
	// el-b01-main/1-0:1.8.0 07:00 new <nil>
	// el-b01-main/1-0:1.8.0 07:00 duplicate <nil>
}
