package daemon

import "github.com/asfence/asfence/internal/api"

// bmpRouters lists the BMP receiver's routers (none without bmp.listen).
func (d *Daemon) bmpRouters() []api.BMPRouter { return nil }
