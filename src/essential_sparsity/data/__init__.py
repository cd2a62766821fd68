"""Task data: the examples of every text, image and arithmetic task and the language-model
corpora, read offline, split into train, validation and test."""
