// The operator's page (admin): placeholder until it is built.
import { session } from './api.js';

document.title = session.email ? `Operator — ${session.email}` : document.title;
