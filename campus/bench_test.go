package campus

import "testing"

// BenchmarkLoadReference loads the reference campus (35,666 points) from
// examples/campus/.
func BenchmarkLoadReference(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		m, err := Load("../examples/campus/campus.yaml")
		if err != nil || len(m.Points) != ReferencePoints {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(ReferencePoints), "points")
}

// BenchmarkGenerateReference generates the reference campus's files.
func BenchmarkGenerateReference(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Generate(GenerateOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}
