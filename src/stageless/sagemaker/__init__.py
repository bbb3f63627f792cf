"""SageMaker: the training container's program, local rehearsal, and job submission.

- :mod:`~stageless.sagemaker.contract`: SageMaker's paths, hyperparameters.json, failure file.
- :mod:`~stageless.sagemaker.container`: ``stageless sagemaker train``, one per host.
- :mod:`~stageless.sagemaker.coordination`: how the hosts share one plan and fail together.
- :mod:`~stageless.sagemaker.local`: N local "instances" without Docker.
- :mod:`~stageless.sagemaker.submit`: CreateTrainingJob and following it.

Importing this package imports nothing else: the CLI registers its commands cheaply.
"""
