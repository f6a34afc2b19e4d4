package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/citymesh/citymesh/internal/testproc"
)

// TestInteropMosquitto runs scripts/interop_mosquitto.sh: Eclipse
// Mosquitto's mosquitto_pub and mosquitto_sub against a citymesh broker built
// from this tree, in MQTT 3.1.1 and 5.0.
func TestInteropMosquitto(t *testing.T) {
	if _, err := exec.LookPath("mosquitto_sub"); err != nil {
		t.Skip("mosquitto_sub not installed (apt-get install mosquitto-clients); .ci/run installs it")
	}
	cmd := exec.Command("bash", "../../scripts/interop_mosquitto.sh", testproc.Binary(t))
	cmd.Env = os.Environ()
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("interop script failed: %v", err)
	}
	if !strings.Contains(string(out), " passed, 0 failed") {
		t.Fatal("interop script reported no results")
	}
}
