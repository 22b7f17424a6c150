pytest_plugins = [
    "darkroom_dev.testing.kafka",
    "darkroom_dev.testing.s3",
    "darkroom_dev.testing.browser",
    "darkroom_dev.testing.figures",
]
