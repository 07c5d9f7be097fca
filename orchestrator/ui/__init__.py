"""Drawing: rich views, the dashboard, CLI output."""
