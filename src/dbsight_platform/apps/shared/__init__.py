"""What the applications share: base models, common schemas, the generic repository and the
audit hook every mutation goes through."""
