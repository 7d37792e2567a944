package daemon

import (
	"errors"

	"github.com/sirupsen/logrus"

	"github.com/asfence/asfence/internal/config"
)

// newSpeaker creates the BGP speaker for the config's bgp: block.
func newSpeaker(cfg *config.Config, log *logrus.Entry) (Speaker, error) {
	return nil, errors.New("bgp: the speaker is not built yet")
}
