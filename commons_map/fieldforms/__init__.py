"""Field forms: submissions from ODK Collect, Kobo and Central exports, and members' field tokens."""
