"""The subscriptions domain: the mirror of Stripe's customers and subscriptions per subject."""
