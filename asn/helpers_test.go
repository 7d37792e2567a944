package asn

import "github.com/asfence/asfence/internal/check"

type problemsCollector struct{ check.Problems }
