"""The MTL-AQA adapter: the release's annotations read into the common dataset root (`adapter`), the
source videos fetched (`download`) and the Excel video list read without a spreadsheet library (`xlsx`)."""
