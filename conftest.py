pytest_plugins = [
    "darkroom_cli.testing.kafka",
    "darkroom_cli.testing.s3",
    "darkroom_cli.testing.browser",
    "darkroom_cli.testing.figures",
]
