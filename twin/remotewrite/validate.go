package remotewrite

// Validate checks the configuration as Open does, without opening
// anything: every error names the setting by its yaml key
// ("remotewrite: url is required").
func (c Config) Validate() error {
	_, err := c.withDefaults()
	return err
}
