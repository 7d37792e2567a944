package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// startProfiles writes a CPU profile to $ASFENCE_CPUPROFILE and, when the
// returned stop runs, a heap profile to $ASFENCE_MEMPROFILE (for `make bench`
// and for finding where time and memory go; go tool pprof reads both).
func startProfiles() (stop func(), err error) {
	var cpu *os.File
	if name := os.Getenv("ASFENCE_CPUPROFILE"); name != "" {
		if cpu, err = os.Create(name); err != nil {
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
		if err := pprof.StartCPUProfile(cpu); err != nil {
			cpu.Close()
			return nil, fmt.Errorf("cpu profile: %w", err)
		}
	}
	return func() {
		if cpu != nil {
			pprof.StopCPUProfile()
			cpu.Close()
		}
		if name := os.Getenv("ASFENCE_MEMPROFILE"); name != "" {
			if f, err := os.Create(name); err == nil {
				runtime.GC()
				_ = pprof.Lookup("allocs").WriteTo(f, 0)
				f.Close()
			}
		}
	}, nil
}
