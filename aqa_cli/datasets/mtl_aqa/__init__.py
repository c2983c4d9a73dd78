"""The MTL-AQA adapter: the release's annotations read into the common dataset root (`adapter`), each
dive's frames cut from its source video (`cut`), the source videos fetched (`download`) and the Excel
video list read without a spreadsheet library (`xlsx`)."""
