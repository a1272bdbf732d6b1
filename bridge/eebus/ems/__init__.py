"""The bridge's own EMS (energy guard / CEM) client: commission and test a site without a real EMS."""
